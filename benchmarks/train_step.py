"""Ratio of one full training iteration (data loading included) to the bare forward+backward.

The full iteration is timed inside ``reidaug.training.train`` (loader, device copy, step,
stats); the bare one calls the same recipe's ``step`` on one batch already in memory.
Goal: at most 1.05.

    python benchmarks/train_step.py --width 16 --batch-size 8 --iters 60
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import timed  # noqa: E402

from reidaug.config import TrainConfig  # noqa: E402
from reidaug.data import make_synthetic  # noqa: E402
from reidaug.data.pairs import PairDataset, train_pairs  # noqa: E402
from reidaug.data.synthetic import SyntheticMarket  # noqa: E402
from reidaug.training import build_recipe, train  # noqa: E402


def measure(width: int, batch: int, iters: int, workers: int, variant: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synth"
        make_synthetic(root, ids=16)
        cfg = TrainConfig(dataset="synthetic", root=str(root), width=width, batch_size=batch, iters1=iters,
                          variant=variant, workers=workers, out=str(Path(tmp) / "runs"), log_every=10**6,
                          sample_every=10**6, checkpoint_every=10**6, lr=1e-4)  # fmt: skip
        stamps: list[float] = []
        train(cfg, progress=lambda done, total, **kw: stamps.append(time.perf_counter()))
        full = statistics.median(b - a for a, b in zip(stamps[5:], stamps[6:], strict=False))

        recipe = build_recipe(cfg, torch.device("cpu"))
        ds = SyntheticMarket(root)
        data = PairDataset(ds, train_pairs(ds.train, ds.annotations("train")), "train")
        items = [data[i] for i in range(batch)]
        one = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        recipe.train_mode(recipe.stages()[0])
        bare = timed(lambda: recipe.step("1", one), repeat=max(10, iters // 3))
    return {"full_s": full, "bare_s": bare, "ratio": full / bare}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--variant", default="g1-posemask")
    args = ap.parse_args()
    r = measure(args.width, args.batch_size, args.iters, args.workers, args.variant)
    print(f"train step  width={args.width} batch={args.batch_size} workers={args.workers}")
    print(f"  full iteration  {r['full_s'] * 1000:8.1f} ms")
    print(f"  bare fwd+bwd    {r['bare_s'] * 1000:8.1f} ms")
    print(f"  ratio           {r['ratio']:8.3f}   (goal <= 1.05)")


if __name__ == "__main__":
    main()
