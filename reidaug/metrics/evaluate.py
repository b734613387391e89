"""``evaluate``: generate a protocol's test pairs with a run's model (or read images already
generated) and score them, always next to three references: the training-free part warp of the
condition onto the target pose, the copy baseline and the real target."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from reidaug.config import EvalConfig
from reidaug.data import build_dataset
from reidaug.data.pairs import Pair, load_image, protocol_pairs
from reidaug.data.parts import warp_images
from reidaug.device import environment, resolve_device
from reidaug.errors import UserError
from reidaug.metrics.fd_mnv2 import FdMnv2Scorer
from reidaug.metrics.idp import IdpMetric
from reidaug.metrics.inception import inception_metrics
from reidaug.metrics.registry import (
    COPY,
    REAL,
    SCORERS,
    WARP,
    Batch,
    EvalContext,
    build_scorers,
    check_names,
    register_scorer,
)
from reidaug.metrics.sharpness import SHARPNESS_METRICS, SharpnessScorer
from reidaug.metrics.ssim import SsimScorer, protocol_mask
from reidaug.synthesis.generate import generate_pairs
from reidaug.training.load import load_generator

register_scorer("ssim", lambda ctx: SsimScorer(masked=False))
register_scorer("mssim", lambda ctx: SsimScorer(masked=True))
register_scorer("ssim-fixed", lambda ctx: SsimScorer(masked=False, fixed_range=True))
register_scorer("sharpness", lambda ctx: SharpnessScorer())
register_scorer("is", inception_metrics)
register_scorer("mis", inception_metrics)
register_scorer("fid", inception_metrics)
register_scorer("fd-mnv2", FdMnv2Scorer)
register_scorer("idp", IdpMetric)

#: The registered metric names (a live view: a module that registers a scorer adds its name).
METRICS = SCORERS.keys()
__all__ = ["COPY", "METRICS", "REAL", "WARP", "evaluate"]


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
                    [
                        load_image(images / f"{a}___{b}.png", ds.height, ds.width, exact=True)
                        for a, b in chunk
                    ]
                ),
                "condition": np.stack([load_image(d / a, ds.height, ds.width) for a, _ in chunk]),
                "target": np.stack([load_image(d / b, ds.height, ds.width) for _, b in chunk]),
            },
        )
        if progress:
            progress(min(i + batch_size, len(pairs)), len(pairs))


def evaluate(
    cfg: EvalConfig | None = None,
    /,
    *,
    progress: Callable[..., None] | None = None,
    log: Callable[[str], None] | None = None,
    inception_state_dict: dict | None = None,
    **fields,
) -> list[dict]:
    """Score a model (or a folder of generated images) on the test pairs of each protocol.

    Args:
        cfg: what to score and how (see :class:`reidaug.config.EvalConfig`), or its fields as
            keyword arguments.
        progress: called as ``progress(done, total, protocol)`` (the contract of
            :mod:`reidaug.progress`).
        log: called with one line per step worth telling.
        inception_state_dict: Inception weights in memory instead of a file (tests).

    Every name in ``cfg.metrics`` is a registered scorer (:mod:`reidaug.metrics.registry`):
    ``ssim``, ``ssim-fixed``, ``mssim``, ``sharpness``, ``is``, ``mis``, ``fid`` and ``idp``.

    Returns:
        One record per (metric, protocol, source): ``{"metric", "protocol", "source", "value",
        "std", "n"}``. Sources are the model's outputs (``G1``, ``G2``) or ``images``, the
        training-free part warp (``warp``), the copy baseline and the real target; scorers
        may add records of their own (``idp``: the judge's quality on real queries, the
        training-id top-1 of ``shards``). With a run,
        records are also appended to ``RUN/metric-<name>.jsonl`` with the checkpoint and time.

    Example:
        >>> run = "runs/00000-pg2-market1501"
        >>> rows = evaluate(run=run, protocols=["posegan"], limit=500)  # doctest: +SKIP
    """
    if cfg is None:
        cfg = EvalConfig(**fields)
    elif fields:
        raise TypeError("give an EvalConfig or its fields, not both")
    check_names(cfg.metrics)
    if (
        cfg.has_model
        and cfg.images is not None
        or not (cfg.has_model or cfg.images is not None or cfg.shards)
    ):
        raise UserError("give either --run (or --checkpoint) or --images (or, for idp, --shards)")
    if cfg.raw_weights and not cfg.has_model:
        raise UserError("--raw-weights chooses a run's weights: give --run or --checkpoint")
    if cfg.shards is not None and "idp" not in cfg.metrics:
        raise UserError("--shards is scored by the idp metric: add idp to --metrics")
    if cfg.inception_weights is not None and not {"is", "mis", "fid"} & set(cfg.metrics):
        raise UserError("--inception-weights serve is, mis and fid: add one to --metrics")
    if cfg.reid_checkpoint is not None and cfg.reid_recipe:
        given = ", ".join(f"--reid-{k}" for k in cfg.reid_recipe)
        raise UserError(f"{given} shape the cached idp judge; --reid-checkpoint gives one")
    log = log or (lambda msg: None)
    dev = resolve_device(cfg.device)
    gen, dataset, root = None, cfg.dataset, cfg.root
    if cfg.has_model:
        gen = load_generator(cfg.run, cfg.checkpoint, dev, raw=cfg.raw_weights)
        if cfg.raw_weights and not gen.config.ema:
            raise UserError(
                "--raw-weights chooses the last weights over their moving average, and this run "
                "was trained without --ema: drop --raw-weights"
            )
        if gen.averaged:
            log(
                f"moving-average weights of {', '.join(gen.averaged)} (--raw-weights: the last "
                "ones)"
            )
        if gen.untrained:
            log(
                f"not trained in {gen.checkpoint.name}: {', '.join(sorted(gen.untrained))}; "
                "their outputs are not scored"
            )
        dataset, root = dataset or gen.config.dataset, root or gen.config.root
    elif dataset is None:
        raise UserError(
            f"--{'images' if cfg.images is not None else 'shards'} needs --dataset and --root"
        )
    ds = build_dataset(dataset, root)
    ds.check_before_run()
    ctx = EvalContext(
        cfg, ds, dev, gen, log, progress, overrides={"inception_state_dict": inception_state_dict}
    )
    scorers = build_scorers(cfg.metrics, ctx)
    protocols = cfg.protocols if gen is not None or cfg.images is not None else ()
    records: list[dict] = []
    for protocol in protocols:
        pairs = protocol_pairs(ds, protocol, cfg.seed)[: cfg.limit]
        for s in scorers:
            s.start(protocol)
        for batch in _batches(ctx, protocol, pairs):
            for s in scorers:
                s.add(batch)
        for s in scorers:
            records += s.records()
    for s in scorers:
        records += s.finish()
    if gen is not None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        env = environment(dev)
        for rec in records:
            line = {
                **rec,
                "checkpoint": str(gen.checkpoint),
                "averaged": list(gen.averaged),
                "time": stamp,
                "environment": env,
            }
            with open(gen.run / f"metric-{rec['metric']}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
    return records


def _batches(ctx: EvalContext, protocol: str, pairs: list[Pair]) -> Iterator[Batch]:
    """The pairs in batches: generated (or read) images, condition, target and masks."""
    ds, cfg, gen = ctx.ds, ctx.cfg, ctx.generator

    def report(done, total):
        if ctx.progress:
            ctx.progress(done, total, protocol)

    stream = (
        generate_pairs(gen.recipe, ds, pairs, "gallery", cfg.batch_size, progress=report)
        if gen is not None
        else _image_batches(Path(cfg.images), ds, pairs, cfg.batch_size, report)
    )
    ann = ds.annotations("gallery")
    untrained = gen.untrained if gen is not None else frozenset()
    for chunk, arrays in stream:
        masks = np.stack([protocol_mask(ann[b], protocol, ds.height, ds.width) for _, b in chunk])
        images = {
            (COPY if k == "condition" else REAL if k == "target" else k): v
            for k, v in arrays.items()
            if k not in untrained
        }
        source = np.stack([ann[a] for a, _ in chunk])
        target = np.stack([ann[b] for _, b in chunk])
        images[WARP] = warp_images(images[COPY], source, target)
        yield Batch(protocol, list(chunk), images, masks)


def as_table(records: list[dict]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Rows (sources) by columns (``metric [protocol]``), values as text, for display."""
    cols = list(dict.fromkeys(f"{r['metric']} ({r['protocol']})" for r in records))
    srcs = list(dict.fromkeys(r["source"] for r in records))
    refs = (WARP, COPY, REAL)
    srcs = [s for s in srcs if s not in refs] + [s for s in refs if s in srcs]
    cell = {}
    for r in records:
        if r["metric"] in ("is", "mis"):
            v = f"{r['value']:.3f} ± {r['std']:.3f}"
        elif r["metric"].startswith("idp"):
            v = f"{100 * r['value']:.1f}%"
        elif r["metric"] in SHARPNESS_METRICS:
            v = f"{r['value']:.2f}x"
        else:
            v = f"{r['value']:.4f}"
        cell[(r["source"], f"{r['metric']} ({r['protocol']})")] = v
    return cols, [(s, [cell.get((s, c), "-") for c in cols]) for s in srcs]
