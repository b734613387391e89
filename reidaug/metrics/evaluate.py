"""``evaluate``: generate a protocol's test pairs with a run's model (or read images already
generated) and score them, always next to the copy baseline and the real target."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from reidaug.config import TrainConfig
from reidaug.data import build_dataset
from reidaug.data.market1501 import Market1501
from reidaug.data.pairs import Pair, load_image, pg2_test_pairs
from reidaug.device import resolve_device
from reidaug.errors import UserError
from reidaug.metrics.inception import Accumulator, InceptionScorer, fid
from reidaug.metrics.ssim import PROTOCOLS, apply_mask, protocol_mask, ssim
from reidaug.synthesis.generate import generate_pairs
from reidaug.training import build_recipe
from reidaug.training import checkpoint as ckpt_io

METRICS = ("ssim", "mssim", "is", "mis", "fid")
COPY, REAL = "copy baseline", "real target"


def protocol_pairs(ds: Market1501, protocol: str, seed: int = 0) -> list[Pair]:
    """The test pairs of a protocol: ``posegan`` = the 12,000 standard pairs; ``pg2`` = 12,800
    seeded random same-id gallery pairs."""
    if protocol == "posegan":
        return ds.test_pairs()
    if protocol == "pg2":
        return pg2_test_pairs(ds.items("gallery"), ds.annotations("gallery"), n=12800, seed=seed)
    raise UserError(f'unknown protocol "{protocol}"; expected one of: {", ".join(PROTOCOLS)}')


def _image_batches(
    images: Path, ds, pairs, batch_size, progress
) -> Iterator[tuple[list[Pair], dict[str, np.ndarray]]]:
    missing = [f"{a}___{b}.png" for a, b in pairs if not (images / f"{a}___{b}.png").is_file()]
    if missing:
        raise UserError(
            f"{len(missing)} of {len(pairs)} images are missing from {images} (first: {missing[0]})"
        )
    d = ds.split_dir("gallery")
    for i in range(0, len(pairs), batch_size):
        chunk = list(pairs[i : i + batch_size])
        yield (
            chunk,
            {
                "images": np.stack(
                    [load_image(images / f"{a}___{b}.png", ds.height, ds.width) for a, b in chunk]
                ),
                "condition": np.stack([load_image(d / a, ds.height, ds.width) for a, _ in chunk]),
                "target": np.stack([load_image(d / b, ds.height, ds.width) for _, b in chunk]),
            },
        )
        if progress:
            progress(min(i + batch_size, len(pairs)), len(pairs))


def evaluate(
    run: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    protocols: Sequence[str] = ("pg2", "posegan"),
    metrics: Sequence[str] = ("ssim", "mssim"),
    limit: int | None = None,
    images: str | os.PathLike | None = None,
    dataset: str | None = None,
    root: str | os.PathLike | None = None,
    inception_weights: str | os.PathLike | None = None,
    is_protocol: str = "is-tf2015",
    device: str = "auto",
    batch_size: int = 32,
    seed: int = 0,
    progress: Callable[..., None] | None = None,
    inception_state_dict: dict | None = None,
) -> list[dict]:
    """Score a model (or a folder of generated images) on the test pairs of each protocol.

    Args:
        run: a run directory; its latest checkpoint unless ``checkpoint`` is given.
        checkpoint: a checkpoint file (its run directory is its grandparent).
        protocols: ``pg2`` and/or ``posegan``.
        metrics: any of ``ssim, mssim, is, mis, fid``.
        limit: score only the first ``limit`` pairs of each protocol.
        images: instead of a run, a folder of ``<from>___<to>.png`` images.
        dataset, root: the dataset (default: the run's).
        inception_weights: weights file for IS and FID (see ``reidaug.metrics.inception``).
        is_protocol: ``is-tf2015`` (the papers') or ``is-torchvision``.
        progress: called as ``progress(done, total, protocol=)``.
        inception_state_dict: weights in memory instead of a file (tests).

    Returns:
        One record per (metric, protocol, source): ``{"metric", "protocol", "source", "value",
        "std", "n"}``. Sources are the model's outputs (``G1``, ``G2``) or ``images``, the copy
        baseline and the real target. With a run, records are also appended to
        ``RUN/metric-<name>.jsonl`` with the checkpoint and time.

    Example:
        >>> rows = evaluate("runs/00000-pg2-market1501", protocols=["posegan"], limit=500)  # doctest: +SKIP
    """
    bad = sorted(set(metrics) - set(METRICS))
    if bad:
        raise UserError(f'unknown metric "{bad[0]}"; expected one of: {", ".join(METRICS)}')
    if (run is None and checkpoint is None) == (images is None):
        raise UserError("give either --run (or --checkpoint) or --images")
    dev = resolve_device(device)
    recipe, ckpt_path = None, None
    if images is None:
        if checkpoint is None:
            if not Path(run).is_dir():
                raise UserError(f"run directory not found: {run}")
            ckpt_path = ckpt_io.latest(run)
            if ckpt_path is None:
                raise UserError(f"no checkpoint in {Path(run) / 'checkpoints'}")
        else:
            ckpt_path = Path(checkpoint)
        state = ckpt_io.load(ckpt_path, map_location=dev)
        cfg = TrainConfig.from_dict(state["config"])
        recipe = build_recipe(cfg, dev)
        recipe.load_state_dict(state, optimizers=False)
        run = Path(run) if run is not None else ckpt_path.parent.parent
        dataset, root = dataset or cfg.dataset, root or cfg.root
    elif dataset is None:
        raise UserError("--images needs --dataset and --root")
    ds = build_dataset(dataset, root)
    ds.check_before_run()
    ann = ds.annotations("gallery")
    scorer = None
    if {"is", "mis", "fid"} & set(metrics):
        scorer = InceptionScorer(is_protocol, inception_weights, inception_state_dict).to(dev)

    records: list[dict] = []
    for protocol in protocols:
        pairs = protocol_pairs(ds, protocol, seed)[:limit]
        ssims: dict[tuple[str, str], list[float]] = {}
        accs: dict[tuple[str, str], Accumulator] = {}

        def report(done, total, _p=protocol):
            if progress:
                progress(done, total, protocol=_p)

        stream = (
            generate_pairs(recipe, ds, pairs, "gallery", batch_size, progress=report)
            if recipe is not None
            else _image_batches(Path(images), ds, pairs, batch_size, report)
        )
        for chunk, arrays in stream:
            masks = np.stack(
                [protocol_mask(ann[b], protocol, ds.height, ds.width) for _, b in chunk]
            )
            sources = {
                (COPY if k == "condition" else REAL if k == "target" else k): v
                for k, v in arrays.items()
            }
            real_masked = np.stack(
                [apply_mask(t, m) for t, m in zip(arrays["target"], masks, strict=True)]
            )
            for src, imgs in sources.items():
                masked = np.stack([apply_mask(im, m) for im, m in zip(imgs, masks, strict=True)])
                if "ssim" in metrics:
                    ssims.setdefault(("ssim", src), []).extend(
                        ssim(p, t, protocol) for p, t in zip(imgs, arrays["target"], strict=True)
                    )
                if "mssim" in metrics:
                    ssims.setdefault(("mssim", src), []).extend(
                        ssim(p, t, protocol) for p, t in zip(masked, real_masked, strict=True)
                    )
                if scorer is not None:
                    accs.setdefault(("is", src), Accumulator(scorer, dev)).add(imgs)
                    if "mis" in metrics:
                        accs.setdefault(("mis", src), Accumulator(scorer, dev)).add(masked)
        for (metric, src), vals in ssims.items():
            records.append({"metric": metric, "protocol": protocol, "source": src,
                            "value": float(np.mean(vals)), "std": float(np.std(vals)), "n": len(vals)})  # fmt: skip
        for (metric, src), acc in accs.items():
            if metric in metrics:
                m, s = acc.score()
                records.append({"metric": metric, "protocol": f"{protocol}/{is_protocol}", "source": src,
                                "value": m, "std": s, "n": len(acc.features())})  # fmt: skip
        if "fid" in metrics:
            real = accs[("is", REAL)].features()
            for (metric, src), acc in accs.items():
                if metric == "is" and src != REAL:
                    records.append({"metric": "fid", "protocol": f"{protocol}/{is_protocol}", "source": src,
                                    "value": fid(acc.features(), real), "std": 0.0, "n": len(real)})  # fmt: skip
    if recipe is not None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        for rec in records:
            line = {**rec, "checkpoint": str(ckpt_path), "time": stamp}
            with open(Path(run) / f"metric-{rec['metric']}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
    return records


def as_table(records: list[dict]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Rows (sources) by columns (``metric [protocol]``), values as text, for display."""
    cols = list(dict.fromkeys(f"{r['metric']} ({r['protocol']})" for r in records))
    srcs = list(dict.fromkeys(r["source"] for r in records))
    srcs = [s for s in srcs if s not in (COPY, REAL)] + [s for s in (COPY, REAL) if s in srcs]
    cell = {}
    for r in records:
        v = (
            f"{r['value']:.3f} ± {r['std']:.3f}"
            if r["metric"] in ("is", "mis")
            else f"{r['value']:.4f}"
        )
        cell[(r["source"], f"{r['metric']} ({r['protocol']})")] = v
    return cols, [(s, [cell.get((s, c), "-") for c in cols]) for s in srcs]
