"""Cost of an added loss: a G1 training step with the SSIM or perceptual loss against one without.

Times the stage-1 step (forward, backward, Adam) of two recipes built from one preset, one with
the ``--loss`` weight 0 and one with ``--weight`` (``ssim``: ``lambda_ssim``; ``perceptual``:
``lambda_perceptual`` on MobileNetV2 blocks 1, 3, 6; goal at most 1.3), on one in-memory
batch, alternating which side runs first over ``--repeat`` rounds, and prints the median
seconds per step of each side and the median per-round ratio with/without with its min and
max. A ratio near 1 means a time budget buys the same iterations with the loss as without, so
an iteration-matched comparison stands for a minutes-matched one.

    python benchmarks/ssim_loss_cost.py --preset cpu --repeat 7
    python benchmarks/ssim_loss_cost.py --preset cpu --loss perceptual --repeat 7
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Spread, alternate, positive_int, timed  # noqa: E402
from generator_cost import batch  # noqa: E402

from reidaug.config import TrainConfig  # noqa: E402
from reidaug.training import build_recipe  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=("paper", "cpu"), default="cpu")
    ap.add_argument("--batch-size", type=positive_int, default=None, help="[default: the preset's]")
    ap.add_argument("--loss", choices=("ssim", "perceptual"), default="ssim")
    ap.add_argument("--weight", type=float, default=1.0, help="the loss weight of the timed side")
    ap.add_argument("--steps", type=positive_int, default=10, help="timed steps per round and side")
    ap.add_argument("--repeat", type=positive_int, default=7, help="alternating rounds")
    args = ap.parse_args()
    if args.weight <= 0:
        sys.exit(f"Error: --weight must be above 0, got {args.weight}")
    sizes = {} if args.batch_size is None else {"batch_size": args.batch_size}
    sides = []
    for w in (0.0, args.weight):
        weight = {f"lambda_{args.loss}": w}
        cfg = TrainConfig.from_preset(args.preset, device="cpu", **weight, **sizes)
        r = build_recipe(cfg, torch.device("cpu"))
        r.train_mode(r.stages()[0])
        sides.append(r)
    one = batch(cfg.batch_size)

    def side(r):
        return lambda: timed(lambda: r.step("1", one), repeat=args.steps)

    pairs = alternate(side(sides[0]), side(sides[1]), args.repeat)
    plain = Spread(tuple(a for a, _ in pairs))
    ssim = Spread(tuple(b for _, b in pairs))
    ratio = Spread(tuple(b / a for a, b in pairs))
    print(
        f"G1 stage-1 step, preset {args.preset}, batch {cfg.batch_size}, "
        f"{torch.get_num_threads()} threads, {args.steps} steps a round"
    )
    print(f"  without      {plain.median * 1000:8.1f} ms a step (median)")
    print(f"  lambda_{args.loss} {args.weight:g} {ssim.median * 1000:6.1f} ms a step (median)")
    print(ratio.line("ratio", "1 = free: equal iterations in equal minutes"))


if __name__ == "__main__":
    main()
