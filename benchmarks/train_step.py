"""Ratio of one full training iteration (data loading included) to the bare forward+backward.

The full iteration is timed inside ``reidaug.training.train`` (loader, device copy, step,
stats); the bare one calls the same recipe's ``step`` on one batch already in memory.
Goal: at most 1.05. The two sides alternate over ``--repeat`` repetitions; the script prints
the median ratio with its min and max.

    python benchmarks/train_step.py --width 16 --batch-size 8 --iters 60 --repeat 5
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Spread, alternate, timed  # noqa: E402

from reidaug.config import TrainConfig  # noqa: E402
from reidaug.data import make_synthetic  # noqa: E402
from reidaug.data.pairs import PairDataset, train_pairs  # noqa: E402
from reidaug.data.synthetic import SyntheticMarket  # noqa: E402
from reidaug.training import build_recipe, train  # noqa: E402


def measure(width: int, batch: int, iters: int, workers: int, variant: str, repeat: int) -> dict:
    """Per repetition: median full-iteration time of a short ``train`` run, and median bare
    ``step`` time on one in-memory batch; the two sides alternate which runs first."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synth"
        make_synthetic(root, ids=16)
        runs = Path(tmp) / "runs"
        cfg = TrainConfig(dataset="synthetic", root=str(root), width=width, batch_size=batch, iters1=iters,
                          variant=variant, workers=workers, out=str(runs), log_every=10**6,
                          sample_every=10**6, checkpoint_every=10**6, lr=1e-4)  # fmt: skip
        recipe = build_recipe(cfg, torch.device("cpu"))
        ds = SyntheticMarket(root)
        data = PairDataset(ds, train_pairs(ds.train, ds.annotations("train")), "train")
        items = [data[i] for i in range(batch)]
        one = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        recipe.train_mode(recipe.stages()[0])

        def full() -> float:
            stamps: list[float] = []
            train(cfg, progress=lambda done, total, **kw: stamps.append(time.perf_counter()))
            shutil.rmtree(runs)  # each repetition is a fresh run
            return statistics.median(b - a for a, b in zip(stamps[5:], stamps[6:], strict=False))

        def bare() -> float:
            return timed(lambda: recipe.step("1", one), repeat=max(10, iters // 3))

        pairs = alternate(full, bare, repeat)
    return {
        "full_s": Spread(tuple(f for f, _ in pairs)),
        "bare_s": Spread(tuple(b for _, b in pairs)),
        "ratio": Spread(tuple(f / b for f, b in pairs)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--variant", default="g1-posemask")
    ap.add_argument("--repeat", type=int, default=5, help="alternating repetitions of both sides")
    args = ap.parse_args()
    r = measure(args.width, args.batch_size, args.iters, args.workers, args.variant, args.repeat)
    print(f"train step  width={args.width} batch={args.batch_size} workers={args.workers}")
    print(f"  full iteration  {r['full_s'].median * 1000:8.1f} ms (median)")
    print(f"  bare fwd+bwd    {r['bare_s'].median * 1000:8.1f} ms (median)")
    print(r["ratio"].line("ratio", "<= 1.05"))


if __name__ == "__main__":
    main()
