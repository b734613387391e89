"""Ratio of a deformable-skip G1's training iteration to the same G1's without it.

Both sides are short ``reidaug.training.train`` runs of the same preset, seed and batches
(data loading, the part geometry computed on the fly and the step included), differing in
``skip`` only: ``deform`` against the preset's own (``add`` for ``cpu``). The two sides
alternate over ``--repeat`` repetitions; the script prints the median per-iteration ratio with
its min and max. Goal: at most 1.3. ``--market`` trains on the real Market-1501
(``REIDAUG_DATA`` or ``../shared/data/market1501``) instead of a small embedded dataset.

    python benchmarks/deform_cost.py --iters 40 --repeat 3
    python benchmarks/deform_cost.py --market --iters 60 --repeat 5
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Spread, alternate, market_root, positive_int  # noqa: E402

from reidaug.config import TrainConfig  # noqa: E402
from reidaug.data import make_synthetic  # noqa: E402
from reidaug.training import train  # noqa: E402


def measure(args: argparse.Namespace, market: Path | None) -> dict[str, Spread]:
    """Per repetition: the median iteration time of a short run of each side."""
    with tempfile.TemporaryDirectory() as tmp:
        root = market or Path(tmp) / "synth"
        if market is None:
            make_synthetic(root, ids=16)
        runs = Path(tmp) / "runs"

        def side(skip: str | None) -> float:
            cfg = TrainConfig.from_preset(
                args.preset,
                dataset="market1501" if market else "synthetic",
                root=str(root),
                iters1=args.iters,
                stage="1",
                lambda_ssim=args.lambda_ssim,
                skip=skip,
                out=str(runs),
                log_every=10**6,
                sample_every=10**6,
                checkpoint_every=10**6,
            )
            stamps: list[float] = []
            train(cfg, progress=lambda done, total, **kw: stamps.append(time.perf_counter()))
            shutil.rmtree(runs)
            return statistics.median(b - a for a, b in zip(stamps[5:], stamps[6:], strict=False))

        pairs = alternate(lambda: side("deform"), lambda: side(None), args.repeat)
    return {
        "deform_s": Spread(tuple(d for d, _ in pairs)),
        "plain_s": Spread(tuple(p for _, p in pairs)),
        "ratio": Spread(tuple(d / p for d, p in pairs)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=positive_int, default=40, help="iterations per run (> 6)")
    ap.add_argument("--repeat", type=positive_int, default=3, help="alternating repetitions")
    ap.add_argument("--preset", choices=("paper", "cpu"), default="cpu")
    ap.add_argument("--lambda-ssim", type=float, default=1.0, help="as the CPU's best G1 trains")
    ap.add_argument("--market", action="store_true", help="train on the real Market-1501")
    args = ap.parse_args()
    if args.iters < 8:
        sys.exit("Error: --iters must be 8 or more (the first five iterations are not timed)")
    market = market_root() if args.market else None
    if args.market and market is None:
        sys.exit("Error: --market needs ../shared/data/market1501 or REIDAUG_DATA")
    r = measure(args, market)
    print(
        f"deformable skips  preset={args.preset} lambda_ssim={args.lambda_ssim} "
        f"data={'market1501' if market else 'embedded'}"
    )
    print(
        f"  iteration  {r['deform_s'].median * 1000:8.1f} ms with skip=deform, "
        f"{r['plain_s'].median * 1000:.1f} ms without (medians)"
    )
    print(r["ratio"].line("ratio", "<= 1.3"))


if __name__ == "__main__":
    main()
