"""Cost of one G1 training step (forward, backward, Adam) per image: concatenated vs additive skips.

Times PG2's stage-1 step on one in-memory batch for each (width, skip, memory format),
interleaved over ``--repeat`` rounds, and prints the median images/s with min and max, and the
ratio concat/add of seconds per image at each width (what ``--skip add`` saves on this machine).

    python benchmarks/generator_cost.py --widths 16,32 --batch-size 16 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from reidaug.config import TrainConfig
from reidaug.training import build_recipe


def batch(n: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    img = lambda: torch.rand(n, 3, 128, 64, generator=g) * 2 - 1  # noqa: E731
    return {
        "condition": img(),
        "target": img(),
        "target_pose": torch.rand(n, 18, 128, 64, generator=g),
        "target_mask": (torch.rand(n, 1, 128, 64, generator=g) > 0.5).float(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="16,32")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per round")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--formats", default="channels_last", help="channels_last and/or contiguous")
    args = ap.parse_args()
    formats = args.formats.split(",")
    widths = [int(w) for w in args.widths.split(",")]
    one = batch(args.batch_size)
    recipes = {}
    for w in widths:
        for skip in ("concat", "add"):
            for fmt in formats:
                cfg = TrainConfig(
                    variant="g1-posemask",
                    width=w,
                    skip=skip,
                    lr=2e-4,
                    device="cpu",
                    channels_last=fmt == "channels_last",
                )
                r = build_recipe(cfg, torch.device("cpu"))
                r.train_mode(r.stages()[0])
                for _ in range(2):  # warm-up
                    r.step("1", one)
                recipes[(w, skip, fmt)] = r
    rates: dict[tuple[int, str, str], list[float]] = {k: [] for k in recipes}
    for _ in range(args.repeat):
        for key, r in recipes.items():
            t = time.perf_counter()
            for _ in range(args.steps):
                r.step("1", one)
            rates[key].append(args.steps * args.batch_size / (time.perf_counter() - t))
    print(
        f"G1 stage-1 step, batch {args.batch_size}, {torch.get_num_threads()} threads, "
        f"median of {args.repeat} interleaved rounds of {args.steps} steps"
    )
    for (w, skip, fmt), v in rates.items():
        print(
            f"  width {w:3d} {skip:6s} {fmt:13s} {statistics.median(v):7.1f} images/s  "
            f"(min {min(v):.1f}, max {max(v):.1f})"
        )
    for w in widths:
        for fmt in formats:
            add, cat = (statistics.median(rates[(w, s, fmt)]) for s in ("add", "concat"))
            print(f"  width {w:3d} {fmt}: concat costs {add / cat:.2f}x add per image")


if __name__ == "__main__":
    main()
