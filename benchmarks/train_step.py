"""Ratio of one full training iteration (data loading included) to the bare forward+backward.

The full iteration is timed inside ``reidaug.training.train`` (loader, device copy, step,
stats); the bare one calls the same recipe's ``step`` on one batch already in memory.
Goal: at most 1.05. The two sides alternate over ``--repeat`` repetitions; the script prints
the median ratio with its min and max, and the ratio of the mean iteration (what a time budget
buys: slow iterations such as a cold data cache count) to the bare one. ``--market`` trains on
the real Market-1501 (``REIDAUG_DATA`` or ``../shared/data/market1501``) instead of a small
embedded dataset, whose images are all cached after a few iterations. ``--compare-workers A,B``
times two loader settings against each other instead (alternating, in one process), since the
bare step's own speed drifts between runs of the script.

    python benchmarks/train_step.py --width 16 --batch-size 8 --iters 60 --repeat 5
    python benchmarks/train_step.py --preset cpu --market --iters 200 --repeat 3
    python benchmarks/train_step.py --preset cpu --market --iters 200 --compare-workers 0,1
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Spread, alternate, market_root, timed  # noqa: E402

from reidaug.config import TrainConfig  # noqa: E402
from reidaug.data import make_synthetic  # noqa: E402
from reidaug.data.market1501 import Market1501  # noqa: E402
from reidaug.data.pairs import PairDataset, train_pairs  # noqa: E402
from reidaug.data.synthetic import SyntheticMarket  # noqa: E402
from reidaug.training import build_recipe, train  # noqa: E402


def measure(args: argparse.Namespace, market: Path | None) -> dict:
    """Per repetition: median and mean full-iteration time of a short ``train`` run, and median
    bare ``step`` time on one in-memory batch; the two sides alternate which runs first."""
    batch = args.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        root = market or Path(tmp) / "synth"
        if market is None:
            make_synthetic(root, ids=16)
        runs = Path(tmp) / "runs"
        cfg = TrainConfig.from_preset(
            args.preset,
            dataset="market1501" if market else "synthetic",
            root=str(root),
            width=args.width,
            batch_size=batch,
            iters1=args.iters,
            variant=args.variant,
            workers=args.workers,
            out=str(runs),
            log_every=10**6,
            sample_every=10**6,
            checkpoint_every=10**6,
            lr=1e-4,
            stage="1",
        )
        recipe = build_recipe(cfg, torch.device("cpu"))
        ds = Market1501(root) if market else SyntheticMarket(root)
        data = PairDataset(ds, train_pairs(ds.train, ds.annotations("train")), "train")
        items = [data[i] for i in range(batch)]
        one = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        recipe.train_mode(recipe.stages()[0])

        def full(workers: int | None = args.workers) -> tuple[float, float]:
            stamps: list[float] = []
            run_cfg = dataclasses.replace(cfg, workers=workers)
            train(run_cfg, progress=lambda done, total, **kw: stamps.append(time.perf_counter()))
            shutil.rmtree(runs)  # each repetition is a fresh run
            gaps = [b - a for a, b in zip(stamps[5:], stamps[6:], strict=False)]
            return statistics.median(gaps), statistics.mean(gaps)

        def bare() -> float:
            return timed(lambda: recipe.step("1", one), repeat=max(10, args.iters // 3))

        if args.compare_workers:
            a, b = args.compare_workers
            pairs = alternate(lambda: full(a), lambda: full(b), args.repeat)
            return {
                "a_s": Spread(tuple(x[1] for x, _ in pairs)),
                "b_s": Spread(tuple(y[1] for _, y in pairs)),
                "workers_ratio": Spread(tuple(x[1] / y[1] for x, y in pairs)),
            }
        pairs = alternate(full, bare, args.repeat)
    return {
        "full_s": Spread(tuple(f for (f, _), _ in pairs)),
        "mean_s": Spread(tuple(m for (_, m), _ in pairs)),
        "bare_s": Spread(tuple(b for _, b in pairs)),
        "ratio": Spread(tuple(f / b for (f, _), b in pairs)),
        "mean_ratio": Spread(tuple(m / b for (_, m), b in pairs)),
    }


def _two_ints(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two integers A,B, got {text!r}") from None
    return a, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="loader processes [default: training's own, 0 on a CPU and 1 on CUDA]",
    )
    ap.add_argument("--variant", default="g1-posemask")
    ap.add_argument("--repeat", type=int, default=5, help="alternating repetitions of both sides")
    ap.add_argument(
        "--preset",
        choices=("paper", "cpu"),
        default="paper",
        help="training preset (cpu: additive skips; --width and --batch-size still apply)",
    )
    ap.add_argument("--market", action="store_true", help="train on the real Market-1501")
    ap.add_argument(
        "--compare-workers",
        type=_two_ints,
        metavar="A,B",
        default=None,
        help="instead of the bare step, time full iterations with A against B loader "
        "processes, alternating, and print the ratio of their mean iterations",
    )
    args = ap.parse_args()
    market = market_root() if args.market else None
    if args.market and market is None:
        sys.exit("Error: --market needs ../shared/data/market1501 or REIDAUG_DATA")
    r = measure(args, market)
    if args.compare_workers:
        a, b = args.compare_workers
        print(
            f"train step  preset={args.preset} width={args.width} batch={args.batch_size} "
            f"data={'market1501' if market else 'embedded'}: workers {a} against {b}"
        )
        print(
            f"  mean iteration  {r['a_s'].median * 1000:8.1f} ms with {a}, "
            f"{r['b_s'].median * 1000:.1f} ms with {b} (medians)"
        )
        print(r["workers_ratio"].line("workers ratio", "< 1: A is faster"))
        return
    print(
        f"train step  preset={args.preset} width={args.width} batch={args.batch_size} "
        f"workers={'auto' if args.workers is None else args.workers} "
        f"data={'market1501' if market else 'embedded'}"
    )
    print(
        f"  full iteration  {r['full_s'].median * 1000:8.1f} ms (median), "
        f"{r['mean_s'].median * 1000:.1f} ms (mean)"
    )
    print(f"  bare fwd+bwd    {r['bare_s'].median * 1000:8.1f} ms (median)")
    print(r["ratio"].line("ratio", "<= 1.05"))
    print(r["mean_ratio"].line("mean ratio", "<= 1.05"))


if __name__ == "__main__":
    main()
