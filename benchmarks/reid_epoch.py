"""One epoch of the ``cpu`` re-ID recipe: ``bench-reid``'s training loop against torchreid's own
``ImageDataManager`` + ``ImageSoftmaxEngine`` loop, on the same images, model, optimiser,
batch size and transforms.

Prints the ratio bench time / torchreid time (goal: at most 1.05) as the median of
``--repeat`` alternating pairs, then where the bench's epoch goes: reading and transforming the
images alone (its loader, no model), and the optimiser steps alone (one batch held in memory),
each as seconds an epoch. ``--market`` reads the real Market-1501 (``REIDAUG_DATA`` or
``../shared/data/market1501``), ``--real-per-id K`` a seeded subset of it so that an epoch is
short; without ``--market`` a small embedded dataset.

``--recipes cpu,pretrained`` instead times the bench loop's epoch of the second recipe against
the first's (goal: the pretrained MobileNetV2 at most 1.3x the scratch osnet_x0_25).

    python benchmarks/reid_epoch.py --market --real-per-id 2 --repeat 3
    python benchmarks/reid_epoch.py --market --real-per-id 2 --workers 0,1,2
    python benchmarks/reid_epoch.py --market --real-per-id 4 --recipes cpu,pretrained
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Spread, alternate, market_root, positive_int  # noqa: E402

from reidaug.data import build_dataset, make_synthetic  # noqa: E402
from reidaug.reidnet import adapter  # noqa: E402
from reidaug.reidnet.recipe import ReidRecipe  # noqa: E402
from reidaug.reidnet.train import RealImages, real_batches, train_reid  # noqa: E402


def bench_epoch(recipe, items, num_classes: int, workers: int) -> float:
    """Seconds of one epoch of ``bench-reid``'s loop (``train_reid``) on ``items``."""
    tf = adapter.transforms(recipe.height, recipe.width, recipe.transforms)[0]
    steps = len(items) // recipe.batch_size
    t = time.perf_counter()
    train_reid(
        recipe,
        RealImages(items, tf),
        num_classes,
        lambda e: real_batches(len(items), recipe.batch_size, 1, e),
        steps,
        seed=1,
        workers=workers,
    )
    return time.perf_counter() - t


def torchreid_epoch(recipe, name: str, workers: int) -> float:
    """Seconds of one epoch of torchreid's ``ImageSoftmaxEngine.train`` on dataset ``name``."""
    import torchreid.reid as torchreid  # the user's own script: torchreid, not reidaug's adapter

    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # its dataset summary, not our figures
        dm = torchreid.data.ImageDataManager(
            sources=name,
            height=recipe.height,
            width=recipe.width,
            transforms=list(recipe.transforms),
            use_gpu=False,
            batch_size_train=recipe.batch_size,
            workers=workers,
        )
    model = torchreid.models.build_model(recipe.model, dm.num_train_pids, pretrained=False)
    opt = torchreid.optim.build_optimizer(model, optim=recipe.optim, lr=recipe.lr)
    engine = torchreid.engine.ImageSoftmaxEngine(dm, model, optimizer=opt, use_gpu=False)
    engine.epoch, engine.max_epoch, engine.writer = 0, 1, None
    engine.train(print_freq=10**9)
    return time.perf_counter() - t


def loader_only(recipe, items, workers: int) -> float:
    """Seconds to read and transform one epoch of batches through the bench's loader."""
    tf = adapter.transforms(recipe.height, recipe.width, recipe.transforms)[0]
    plan = real_batches(len(items), recipe.batch_size, 1, 0)
    loader = torch.utils.data.DataLoader(
        RealImages(items, tf), batch_sampler=plan, num_workers=workers
    )
    t = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - t


def steps_only(recipe, items, num_classes: int) -> float:
    """Seconds of one epoch of optimiser steps on one batch held in memory."""
    tf = adapter.transforms(recipe.height, recipe.width, recipe.transforms)[0]
    data = RealImages(items[: recipe.batch_size], tf)
    x = torch.stack([data[i][0] for i in range(len(data))])
    y = torch.tensor([data[i][1] for i in range(len(data))])
    model = adapter.build_model(recipe.model, num_classes).train()
    ce = adapter.cross_entropy(num_classes, recipe.label_smooth)
    opt = adapter.optimizer(model, recipe.optim, recipe.lr, recipe.weight_decay)
    t = time.perf_counter()
    for _ in range(len(items) // recipe.batch_size):
        loss = ce(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
    return time.perf_counter() - t


def compare_recipes(names: list[str], items, num_classes: int, workers: int, args) -> None:
    """Print the epoch of recipe ``names[1]`` against ``names[0]``'s (the bench loop, same
    images, interleaved), each with the recipe's own model, transforms and batch size."""
    a, b = (ReidRecipe.named(n, epochs=1, warmup_epochs=0) for n in names)
    for r in (a, b):
        print(f"recipe {r.model}: {r.height}x{r.width}, batch {r.batch_size}, {r.transforms}")
    pairs = alternate(
        lambda: bench_epoch(a, items, num_classes, workers),
        lambda: bench_epoch(b, items, num_classes, workers),
        args.repeat,
    )
    print(f"{names[0]}: {Spread(tuple(p[0] for p in pairs)).median:.1f} s an epoch")
    print(f"{names[1]}: {Spread(tuple(p[1] for p in pairs)).median:.1f} s an epoch")
    print(Spread(tuple(p[1] / p[0] for p in pairs)).line(f"ratio {names[1]}/{names[0]}", "<= 1.3"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--market", action="store_true", help="read the real Market-1501")
    ap.add_argument("--real-per-id", type=positive_int, default=None)
    ap.add_argument("--repeat", type=positive_int, default=3)
    ap.add_argument(
        "--workers",
        default="1,2",
        help="loader workers of the bench and of torchreid (A,B), or A,B,C to compare the "
        "bench with A, B and C workers against torchreid with the last",
    )
    ap.add_argument(
        "--recipes",
        default=None,
        help="A,B: time recipe B's epoch against recipe A's, both through the bench loop",
    )
    args = ap.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    recipe = ReidRecipe.named("cpu", epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        if args.market:
            root = market_root()
            if root is None:
                sys.exit("Error: no Market-1501 (set REIDAUG_DATA)")
            ds = build_dataset("market1501", str(root))
        else:
            make_synthetic(Path(tmp) / "synth", ids=32)
            ds = build_dataset("synthetic", str(Path(tmp) / "synth"))
        if args.real_per_id:
            ds.restrict_train(args.real_per_id, None, 0)
        items = list(ds.train)
        train = [(str(it.path), it.pid, it.camid) for it in items]
        test = [(str(it.path), it.pid, it.camid) for it in ds.query[:8]]
        adapter.register_dataset("reid_epoch_bench", train, test, test)
        n, steps = len(items), len(items) // recipe.batch_size
        print(f"{n} training images, {ds.num_train_ids} ids, {steps} steps of {recipe.batch_size}")
        print(f"torch threads {torch.get_num_threads()}; recipe cpu ({recipe.model})")
        if args.recipes:
            compare_recipes(args.recipes.split(","), items, ds.num_train_ids, workers[0], args)
            return
        tr_workers = workers[-1]
        for w in workers[:-1]:
            pairs = alternate(
                lambda w=w: bench_epoch(recipe, items, ds.num_train_ids, w),
                lambda: torchreid_epoch(recipe, "reid_epoch_bench", tr_workers),
                args.repeat,
            )
            b = Spread(tuple(p[0] for p in pairs))
            r = Spread(tuple(p[1] for p in pairs))
            ratio = Spread(tuple(p[0] / p[1] for p in pairs))
            print(f"bench loop, {w} workers: {b.median:.1f} s an epoch (median of {args.repeat})")
            print(f"torchreid, {tr_workers} workers: {r.median:.1f} s an epoch")
            print(ratio.line(f"ratio w={w}", "<= 1.05"))
        w = workers[0]
        print(f"bench loader alone ({w} workers): {loader_only(recipe, items, w):.1f} s an epoch")
        print(
            f"optimiser steps alone: {steps_only(recipe, items, ds.num_train_ids):.1f} s an epoch"
        )


if __name__ == "__main__":
    main()
