"""Pose rendering throughput vs what training consumes.

Prints heatmap+mask samples per second on one core, next to samples per second a training
step of a given width and batch consumes. Goal: at least 10x. The two sides alternate over
``--repeat`` repetitions; the script prints the median ratio with its min and max.

    python benchmarks/pose_render.py --width 16 --batch-size 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Spread, alternate, timed  # noqa: E402

from reidaug.config import TrainConfig  # noqa: E402
from reidaug.data import keypoints as K  # noqa: E402
from reidaug.data.pose import pose_mask, render_heatmaps  # noqa: E402
from reidaug.data.synthetic import sample_pose, to_annotation  # noqa: E402
from reidaug.training import build_recipe  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=5, help="alternating repetitions of both sides")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    kps = [to_annotation(sample_pose(rng), 0.0, rng) for _ in range(args.samples)]
    kps = [k for k in kps if K.is_valid_pose(k)]

    def render():
        for k in kps:
            render_heatmaps(k)
            pose_mask(k)

    cfg = TrainConfig(width=args.width, variant="g1-posemask", lr=1e-4)
    recipe = build_recipe(cfg, torch.device("cpu"))
    recipe.train_mode(recipe.stages()[0])
    b = args.batch_size
    batch = {
        "condition": torch.randn(b, 3, 128, 64),
        "target": torch.randn(b, 3, 128, 64),
        "target_pose": torch.randn(b, 18, 128, 64),
        "target_mask": torch.ones(b, 1, 128, 64),
    }

    def render_rate() -> float:  # one core, as one loader worker has
        torch.set_num_threads(1)
        return len(kps) / timed(render, repeat=3, warmup=1)

    def consume_rate() -> float:  # both cores, as training has
        torch.set_num_threads(2)
        return b / timed(lambda: recipe.step("1", batch), repeat=5)

    pairs = alternate(render_rate, consume_rate, args.repeat)
    rend = Spread(tuple(r for r, _ in pairs))
    cons = Spread(tuple(c for _, c in pairs))
    print(f"pose rendering (heatmaps + mask), 1 core: {rend.median:8.0f} samples/s (median)")
    print(f"training step consumes (width {args.width}, batch {b}): {cons.median:8.1f} samples/s")
    print(Spread(tuple(r / c for r, c in pairs)).line("ratio", ">= 10x"))


if __name__ == "__main__":
    main()
