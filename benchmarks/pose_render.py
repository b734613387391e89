"""Pose rendering throughput vs what training consumes.

Prints heatmap+mask samples per second on one core, next to samples per second a training
step of a given width and batch consumes. Goal: at least 10x.

    python benchmarks/pose_render.py --width 16 --batch-size 8
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import timed  # noqa: E402

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
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    kps = [to_annotation(sample_pose(rng), 0.0, rng) for _ in range(args.samples)]
    kps = [k for k in kps if K.is_valid_pose(k)]

    def render():
        for k in kps:
            render_heatmaps(k)
            pose_mask(k)

    render_rate = len(kps) / timed(render, repeat=3, warmup=1)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg = TrainConfig(width=args.width, variant="g1-posemask", lr=1e-4)
    recipe = build_recipe(cfg, torch.device("cpu"))
    recipe.train_mode(recipe.stages()[0])
    b = args.batch_size
    batch = {
        "condition": torch.randn(b, 3, 128, 64), "target": torch.randn(b, 3, 128, 64),
        "target_pose": torch.randn(b, 18, 128, 64), "target_mask": torch.ones(b, 1, 128, 64),
    }  # fmt: skip
    torch.set_num_threads(2)
    consume_rate = b / timed(lambda: recipe.step("1", batch), repeat=5)
    print(f"pose rendering (heatmaps + mask), 1 core: {render_rate:8.0f} samples/s")
    print(f"training step consumes (width {args.width}, batch {b}): {consume_rate:8.1f} samples/s")
    print(f"ratio {render_rate / consume_rate:8.1f}x   (goal >= 10x)")


if __name__ == "__main__":
    main()
