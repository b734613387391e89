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
from reidaug.metrics.idp import (
    JUDGE,
    WEAK_JUDGE_MAP,
    IdpScorer,
    judge_quality,
    load_for,
    train_id_accuracy,
)
from reidaug.metrics.inception import Accumulator, InceptionScorer, fid
from reidaug.metrics.sharpness import SHARPNESS_METRICS, sharpness
from reidaug.metrics.ssim import PROTOCOLS, apply_mask, protocol_mask, ssim
from reidaug.reid.bench import BenchConfig, cached_model
from reidaug.synthesis.generate import generate_pairs
from reidaug.synthesis.shards import ShardDataset, file_sha256
from reidaug.training import build_recipe
from reidaug.training import checkpoint as ckpt_io

METRICS = ("ssim", "mssim", "is", "mis", "fid", "idp", "sharpness")
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
    reid_checkpoint: str | os.PathLike | None = None,
    reid_recipe: dict | None = None,
    shards: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
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
        reid_checkpoint: the re-ID model for ``idp`` (``bench-reid`` writes
            ``OUT/baseline-seed1.pt``); without it one is trained on the real training set with
            the ``cpu`` recipe overridden by ``reid_recipe`` (``BenchConfig`` fields) and cached
            (``reidaug.reid.model.cache_dir``).
        shards: with ``idp``, also score synthesized training-id shards (classifier top-1 on the
            source label); with neither a run nor images, only these are scored.
        log: called with one line per step worth telling.

    Returns:
        One record per (metric, protocol, source): ``{"metric", "protocol", "source", "value",
        "std", "n"}``. Sources are the model's outputs (``G1``, ``G2``) or ``images``, the copy
        baseline and the real target. ``idp`` gives ``idp-rank1`` and ``idp-mAP`` per source,
        and the same for the judge on the real queries (source ``judge (real queries)``);
        ``sharpness`` gives ``lapvar`` and ``hfe`` as ratios to the real target (see
        ``reidaug.metrics.sharpness``). With a run, records are also appended to
        ``RUN/metric-<name>.jsonl`` with the checkpoint and time.

    Example:
        >>> rows = evaluate("runs/00000-pg2-market1501", protocols=["posegan"], limit=500)  # doctest: +SKIP
    """
    bad = sorted(set(metrics) - set(METRICS))
    if bad:
        raise UserError(f'unknown metric "{bad[0]}"; expected one of: {", ".join(METRICS)}')
    has_model = run is not None or checkpoint is not None
    if has_model and images is not None or not (has_model or images is not None or shards):
        raise UserError("give either --run (or --checkpoint) or --images (or, for idp, --shards)")
    if shards is not None and "idp" not in metrics:
        raise UserError("--shards is scored by the idp metric: add idp to --metrics")
    log = log or (lambda msg: None)
    dev = resolve_device(device)
    recipe, ckpt_path, untrained = None, None, set()
    if has_model:
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
        untrained = _untrained_outputs(recipe, state)
        if untrained:
            log(
                f"not trained in {ckpt_path.name}: {', '.join(sorted(untrained))}; their outputs are not scored"
            )
        run = Path(run) if run is not None else ckpt_path.parent.parent
        dataset, root = dataset or cfg.dataset, root or cfg.root
    elif dataset is None:
        raise UserError(
            f"--{'images' if images is not None else 'shards'} needs --dataset and --root"
        )
    ds = build_dataset(dataset, root)
    ds.check_before_run()
    if not has_model and images is None:
        protocols = []
    reid = None
    if "idp" in metrics:
        judge = _reid_checkpoint(ds, reid_checkpoint, reid_recipe, dev, progress, log)
        trained_against = cfg.extra.get("id_checkpoint_sha256") if recipe is not None else None
        if trained_against and file_sha256(judge) == trained_against:
            log(f"warning: the idp judge {judge} is the identity network this generator was trained "
                "against: its idp figures are flattered; judge with an independent re-ID model")  # fmt: skip
        reid = load_for(judge, ds, dev)
    idp = None
    if reid is not None and protocols:
        log(f"idp: embedding the {ds.name} gallery")
        idp = IdpScorer(*reid, ds, dev, batch_size)  # once: every protocol ranks this gallery
    ann = ds.annotations("gallery")
    scorer = None
    if {"is", "mis", "fid"} & set(metrics):
        scorer = InceptionScorer(is_protocol, inception_weights, inception_state_dict).to(dev)

    records: list[dict] = []
    for protocol in protocols:
        pairs = protocol_pairs(ds, protocol, seed)[:limit]
        ssims: dict[tuple[str, str], list[float]] = {}
        accs: dict[tuple[str, str], Accumulator] = {}
        sharp: dict[tuple[str, str], list[float]] = {}
        if idp is not None:
            idp.queries.clear()

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
                if k not in untrained
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
                if idp is not None:
                    idp.add(src, imgs, chunk)
                if "sharpness" in metrics:
                    for im, m in zip(imgs, masks, strict=True):
                        for k, v in sharpness(im, m).items():
                            sharp.setdefault((k, src), []).append(v)
                if scorer is not None:
                    accs.setdefault(("is", src), Accumulator(scorer, dev)).add(imgs)
                    if "mis" in metrics:
                        accs.setdefault(("mis", src), Accumulator(scorer, dev)).add(masked)
        for (metric, src), vals in ssims.items():
            records.append({"metric": metric, "protocol": protocol, "source": src,
                            "value": float(np.mean(vals)), "std": float(np.std(vals)), "n": len(vals)})  # fmt: skip
        for (metric, src), vals in sharp.items():
            ref = float(np.mean(sharp[(metric, REAL)]))
            records.append({"metric": metric, "protocol": protocol, "source": src,
                            "value": float(np.mean(vals)) / ref, "std": float(np.std(vals)) / ref,
                            "n": len(vals), "raw": float(np.mean(vals))})  # fmt: skip
        if idp is not None:
            for src in idp.queries:
                sc = idp.score(src)
                for k in ("rank1", "mAP"):
                    records.append({"metric": f"idp-{k}", "protocol": protocol, "source": src,
                                    "value": sc[k], "std": 0.0, "n": sc["n"]})  # fmt: skip
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
    if reid is not None:
        q = judge_quality(*reid, ds, dev, idp.gf if idp is not None else None)
        for k in ("rank1", "mAP"):
            records.append({"metric": f"idp-{k}", "protocol": "real queries", "source": JUDGE,
                            "value": q[k], "std": 0.0, "n": q["n"]})  # fmt: skip
        log(f"idp judge on the real {ds.name} queries: mAP {100 * q['mAP']:.1f}%, "
            f"Rank-1 {100 * q['rank1']:.1f}%")  # fmt: skip
        if q["mAP"] < WEAK_JUDGE_MAP:
            log(f"warning: the idp judge reaches only {100 * q['mAP']:.1f}% mAP on real queries "
                f"(below {100 * WEAK_JUDGE_MAP:.0f}%): its idp figures rank sources only coarsely")  # fmt: skip
    if shards is not None:
        log(f"idp: classifying the training-id images of {shards}")
        sd = ShardDataset(shards)
        for src, r in train_id_accuracy(*reid, ds, sd, dev, limit).items():
            records.append({"metric": "idp-top1", "protocol": "train-ids", "source": src,
                            "value": r["top1"], "std": 0.0, "n": r["n"]})  # fmt: skip
    if recipe is not None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        for rec in records:
            line = {**rec, "checkpoint": str(ckpt_path), "time": stamp}
            with open(Path(run) / f"metric-{rec['metric']}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
    return records


def _untrained_outputs(recipe, state: dict) -> set[str]:
    """Networks of the stages a checkpoint never reached (an untrained PG2 G2 adds a zero
    residual and would repeat G1's figures under its own name)."""
    stages = recipe.stages()
    reached = [i < state["stage_index"] or (i == state["stage_index"] and state["stage_step"] > 0)
               for i in range(len(stages))]  # fmt: skip
    trained = {n for st, ok in zip(stages, reached, strict=True) if ok for n in st.trains}
    return {n for st in stages for n in st.trains} - trained


def _reid_checkpoint(ds, path, recipe, device, progress, log) -> Path:
    """``path``, or the cached re-ID model of ``recipe`` on ``ds`` (trained on first use)."""
    if path is not None:
        return Path(path)
    cfg = BenchConfig.from_recipe(
        "cpu", dataset=ds.name, root=str(ds.root), device=str(device), **(recipe or {})
    )

    def report(done, total, **kw):
        if progress:
            progress(done, total, protocol=f"re-ID model, epoch {done}/{total}")

    return cached_model(cfg, device, report, log)


def as_table(records: list[dict]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Rows (sources) by columns (``metric [protocol]``), values as text, for display."""
    cols = list(dict.fromkeys(f"{r['metric']} ({r['protocol']})" for r in records))
    srcs = list(dict.fromkeys(r["source"] for r in records))
    srcs = [s for s in srcs if s not in (COPY, REAL)] + [s for s in (COPY, REAL) if s in srcs]
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
