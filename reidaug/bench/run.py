"""``bench``: the same torchreid recipe trained without and with synthetic images, side by side.

Both arms take the same optimiser steps by default: the augmented arm replaces a
``synthetic_ratio`` share of every batch with synthetic images (``extra_steps`` adds them on
top instead, and the report says which was used). Every (arm, seed) result is written as soon
as it finishes, with its model; an interrupted arm resumes from its last epoch; rerunning the
same command skips what is done and rebuilds the report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from reidaug.atomic import write_json
from reidaug.bench.config import ARM_FIELDS, METRIC_KEYS, BenchConfig
from reidaug.bench.fusion import ROWS
from reidaug.bench.labels import keep_confident, source_confidence, teacher_labels
from reidaug.bench.plan import arm_plan, steps_per_epoch
from reidaug.bench.report import build_report, read_result, write_report
from reidaug.bench.stats import mean_std, paired_delta
from reidaug.bench.testtime import FusionConfig, pose_fusion
from reidaug.data import build_dataset
from reidaug.data.market1501 import Item, Market1501
from reidaug.device import environment, resolve_device
from reidaug.errors import UserError
from reidaug.names import ARMS
from reidaug.progress import relabel
from reidaug.reidnet import adapter
from reidaug.reidnet import model as reid_model
from reidaug.reidnet.cache import cached_model
from reidaug.reidnet.recipe import ReidRecipe
from reidaug.reidnet.train import RealImages, first_difference, train_reid
from reidaug.synthesis.shards import ShardDataset, check_fits, read_manifest
from reidaug.weights import file_sha256


class Mixed(Dataset):
    """Real training images (indices ``0..N-1``) and synthetic ones (``N..N+M-1``: the shard
    images at ``index``, all of them by default), one label space; items are
    ``(image, label, synthetic)`` with ``synthetic`` 0 for a real image and ``j + 1`` for
    synthetic image ``j``."""

    def __init__(
        self,
        real: Sequence[Item],
        shards: ShardDataset | None,
        transform,
        index: np.ndarray | None = None,
    ) -> None:
        self.real, self.shards, self.tf = RealImages(real, transform), shards, transform
        if index is None:
            index = np.arange(len(shards) if shards is not None else 0)
        self.index = np.asarray(index, np.int64)

    def __len__(self) -> int:
        return len(self.real) + len(self.index)

    def __getitem__(self, i: int):
        if i < len(self.real):
            return self.real[i]
        j = i - len(self.real)
        k = int(self.index[j])
        img = self.shards.image(*self.shards.locate(k))
        return self.tf(Image.fromarray(img)), int(self.shards.column("label")[k]), j + 1


def check_provenance(shards: ShardDataset, ds: Market1501) -> None:
    """Refuse shards whose generator or synthesis saw a real image outside ``ds``'s training
    subset: the generator's training options must name the same subset, and every source
    image must be in it (a gain could otherwise come from real data the bench withholds)."""
    s = ds.subset
    wanted = _subset_key(*(s["real_per_id"], s["id_fraction"], s["seed"]) if s else (None,) * 3)
    for attrs in shards.attrs:
        try:
            stored = json.loads(attrs["config"])
            t, warped = stored["training"], stored["job"]["model"] == "warp"
        except (KeyError, TypeError, ValueError):
            raise UserError("shards carry no training options; synthesize them again") from None
        if warped and t is None:
            continue  # the training-free warp learnt from nothing: only its sources count
        if not isinstance(t, dict):
            raise UserError("shards carry no training options; synthesize them again")
        if t.get("dataset") != ds.name:
            continue  # a generator trained on another dataset saw none of these people
        theirs = _subset_key(t.get("real_per_id"), t.get("id_fraction"), t.get("subset_seed", 0))
        if theirs != wanted:
            raise UserError(
                "the shards' generator was trained on another training set "
                f"({_subset_text(theirs)}) than this bench uses ({_subset_text(wanted)}): "
                "train it with the same --real-per-id, --id-fraction and --subset-seed"
            )
    names = {it.path.name for it in ds.train}
    outside = [s for s in shards.column("source").tolist() if s not in names]
    if outside:
        raise UserError(
            f"shard source image {outside[0]} is outside this bench's training subset "
            f"({len(outside)} images in all)"
        )


def _subset_key(real_per_id, id_fraction, seed) -> dict | None:
    """A training subset's defining options, ``None`` for the whole training set."""
    if real_per_id is None and id_fraction is None:
        return None
    return {"real_per_id": real_per_id, "id_fraction": id_fraction, "seed": seed}


def _subset_text(s: dict | None) -> str:
    if s is None:
        return "all of it"
    parts = [
        f"{s['real_per_id']} per id" if s["real_per_id"] else "",
        f"{s['id_fraction']:g} of the ids" if s["id_fraction"] else "",
        f"seed {s['seed']}",
    ]
    return ", ".join(p for p in parts if p)


def shards_identity(folder: str | os.PathLike, shards: ShardDataset) -> dict:
    """What identifies a synthetic set: its job (manifest) and its size."""
    job = read_manifest(Path(folder))
    keys = ("checkpoint_sha256", "poses", "strategy", "seed", "shard_size", "sources")
    return {**{k: job.get(k) for k in keys}, "images": len(shards)}


def result_key(
    cfg: BenchConfig,
    arm: str,
    ds: Market1501,
    shards_id: dict | None,
    synthetic_filter: dict | None = None,
) -> dict:
    """Everything that alters an (arm, seed) result: old results must match it to be reused."""
    key = cfg.model_key()
    key |= {"root": str(Path(ds.root).resolve()), "train_images": len(ds.train)}
    if ds.validation is not None:
        key |= {"validation": ds.validation}
    if ds.subset is not None:
        key |= {"subset": ds.subset}
    key |= {k: getattr(cfg, k) for k in ARM_FIELDS[arm]}
    if arm == "augmented":
        key |= {"shards": shards_id}
        if cfg.label == "teacher":
            key |= {"teacher_temperature": cfg.teacher_temperature}
        if synthetic_filter is not None:
            key |= {"filter": {k: synthetic_filter[k] for k in ("judge_sha256", "min_confidence")}}
    return json.loads(json.dumps(key))  # as stored in JSON (tuples become lists)


def differing_fields(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted names of the leaves where two result keys differ (``shards.checkpoint_sha256``)."""
    out: list[str] = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differing_fields(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def train_arm(
    cfg: BenchConfig,
    ds: Market1501,
    shards: ShardDataset | None,
    seed: int,
    device,
    progress: Callable[..., None] | None = None,
    tag: str = "baseline",
    state_path: Path | None = None,
    key: dict | None = None,
    log: Callable[[str], None] | None = None,
    index: np.ndarray | None = None,
    soft_targets: torch.Tensor | None = None,
) -> tuple[nn.Module, dict]:
    """Train the arm ``tag`` (baseline, augmented, baseline-matched): ``cfg``'s recipe on
    ``ds.train`` plus, for the augmented arm, the ``shards`` images at ``index`` [default: all],
    labelled by ``soft_targets`` (one row per used image) when ``cfg.label`` is ``teacher``."""
    n_real, b = len(ds.train), cfg.batch_size
    if n_real < b:
        raise UserError(f"--batch-size {b} exceeds the {n_real} training images")
    data = Mixed(
        ds.train, shards, adapter.transforms(cfg.height, cfg.width, cfg.transforms)[0], index
    )
    n_syn = len(data) - n_real
    model, info = train_reid(
        cfg.reid,
        data,
        ds.num_train_ids,
        lambda epoch: arm_plan(cfg, tag, n_real, n_syn, seed, epoch),
        steps_per_epoch(cfg, n_real, tag == "augmented"),
        seed=seed,
        device=device,
        label=cfg.label if tag == "augmented" else "same-id",
        workers=cfg.workers,
        progress=progress,
        tag=tag,
        state_path=state_path,
        key=key,
        log=log,
        soft_targets=soft_targets,
    )
    if tag == "augmented":
        info["synthetic_pool"] = n_syn  # the synthetic images the arm drew from
    return model, info


def save_model(
    model: nn.Module, path: Path, cfg: BenchConfig, ds: Market1501, quality: dict | None = None
) -> None:
    """Write ``model`` as a re-ID checkpoint that ``evaluate --reid-checkpoint`` reads;
    ``quality`` (its mAP and Rank-1 on the real queries) travels with it."""
    reid_model.save_trained(model, path, cfg.reid, ds, quality)


def bench(
    cfg: BenchConfig,
    progress: Callable[..., None] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train the torchreid recipe per seed on real data (baseline) and on real + synthetic
    (augmented), evaluate both with torchreid's ranking, and write ``report.json``,
    ``report.md`` and ``cmc.png`` to ``cfg.out``.

    Each (arm, seed) writes ``OUT/<arm>-seed<S>.json`` and its model ``OUT/<arm>-seed<S>.pt``
    as soon as it finishes, and ``OUT/.<arm>-seed<S>.state.pt`` after every epoch; a rerun skips
    finished results whose options match and refuses ones that do not. With
    ``cfg.report_only`` nothing is trained: every result must exist, and those made with other
    options are listed in the report's ``mixed_options`` instead of refused.

    Returns:
        The report: per-seed results, mean and std per arm, and the paired deltas.

    Example:
        >>> cfg = BenchConfig.from_recipe(
        ...     "cpu", dataset="synthetic", root="data", shards="shards/", epochs=8
        ... )
        >>> report = bench(cfg)  # doctest: +SKIP
    """
    log = log or (lambda msg: None)
    device = resolve_device(cfg.device)
    adapter.check_model(cfg.model)  # before any work
    ds = build_dataset(cfg.dataset, cfg.root)
    ds.check_before_run(need_annotations=False)
    if cfg.val_ids is not None:
        v = ds.hold_out(cfg.val_ids, cfg.val_seed)
        log(
            f"validation split: {v['ids']} ids held out, {v['query']} queries, "
            f"{v['gallery']} gallery images"
        )
    subset = ds.restrict_train(cfg.real_per_id, cfg.id_fraction, cfg.subset_seed)
    if subset is not None:
        log(f"training subset: {subset['images']} images of {subset['ids']} ids")
    shards, shards_id = None, None
    if "augmented" in cfg.arms:
        if cfg.shards is None:
            raise UserError("--shards DIR is required: the augmented arm needs synthetic images")
        shards = ShardDataset(cfg.shards)
        check_fits(shards, ds)
        check_provenance(shards, ds)
        shards_id = shards_identity(cfg.shards, shards)
    elif cfg.shards is not None:
        raise UserError(
            "--shards is used only by the augmented arm; add it to --arms or drop --shards"
        )
    recipe = cfg.reid
    if recipe.pretrained is not None:  # a bad weights file fails before anything is written
        adapter.build_model(recipe.model, ds.num_train_ids, recipe.pretrained)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    index, synthetic_filter = None, None
    if shards is not None and cfg.min_confidence is not None:
        index, synthetic_filter = filter_synthetic(
            cfg, ds, shards, shards_id, out, device, progress, log
        )
    # the baseline first: with --label teacher it labels the same seed's synthetic images
    arms = sorted(cfg.arms, key=ARMS.index)
    mixed: list[dict] = []
    for seed in cfg.seeds:
        for arm in arms:
            key = result_key(cfg, arm, ds, shards_id, synthetic_filter)
            res = out / f"{arm}-seed{seed}.json"
            if res.is_file():
                old = read_result(res).get("key", {})
                diff = first_difference(old, key)
                if diff and cfg.report_only:
                    mixed.append({"arm": arm, "seed": seed, "fields": differing_fields(old, key)})
                elif diff:
                    raise UserError(
                        f"{res} was made with other options ({diff}); "
                        "use another --out or remove it"
                    )
                log(f"{arm} seed {seed}: finished earlier, skipped ({res})")
                continue
            if cfg.report_only:
                raise UserError(
                    f"{res} does not exist: --report-only trains nothing; run without it to "
                    f"train {arm} seed {seed}"
                )
            log(f"seed {seed}: training the {arm} arm")
            state = out / f".{arm}-seed{seed}.state.pt"
            arm_shards = shards if arm == "augmented" else None
            soft = None
            if arm == "augmented" and cfg.label == "teacher":
                used = index if index is not None else np.arange(len(shards))
                soft = torch.from_numpy(
                    teacher_labels(
                        out / f"baseline-seed{seed}.pt",
                        shards,
                        shards_id,
                        used,
                        cfg.teacher_temperature,
                        ds.num_train_ids,
                        ds.name,
                        out / f".teacher-seed{seed}.npz",
                        device,
                        cfg.workers,
                        log,
                    )
                ).float()
            model, info = train_arm(
                cfg, ds, arm_shards, seed, device, progress, arm, state, key, log, index, soft
            )
            meta = {"height": cfg.height, "width": cfg.width}
            metrics = reid_model.evaluate_model(model, ds, meta, device, cfg.workers)
            save_model(model, out / f"{arm}-seed{seed}.pt", cfg, ds, metrics)
            env = environment(device)
            write_json(
                res, {"arm": arm, "seed": seed, **metrics, **info, "key": key, "environment": env}
            )
            (out / f".{arm}-seed{seed}.state.pt").unlink(missing_ok=True)
    report = build_report(cfg, out, ds, len(shards) if shards is not None else 0, synthetic_filter)
    if mixed:
        report["mixed_options"] = mixed
    if cfg.test_poses:
        report["test_time"] = test_time_report(cfg, ds, out, device, progress, log)
    write_report(out, report)
    return report


def test_time_report(
    cfg: BenchConfig,
    ds: Market1501,
    out: Path,
    device,
    progress: Callable[..., None] | None,
    log: Callable[[str], None],
) -> dict:
    """The four rankings (plain, flip-averaged, pose-fused, pose-fused + flip) of every
    (arm, seed) model, mean ± std per arm, and each pose-fused row's paired delta against
    flip-averaging."""
    fcfg = FusionConfig(
        generator=cfg.test_generator,
        poses=cfg.test_poses,
        fusion=cfg.fusion,
        weight=cfg.fusion_weight,
        annotations=cfg.test_annotations,
        estimator=cfg.pose_estimator,
    )
    arms = cfg.test_arms or cfg.arms
    models = {(arm, s): out / f"{arm}-seed{s}.pt" for arm in arms for s in cfg.seeds}

    report = relabel(progress, "test-time views")

    res = pose_fusion(
        list(models.values()),
        fcfg,
        out,
        cfg.dataset,
        cfg.root,
        device,
        report,
        log,
        cfg.subset_args,
    )
    runs = {
        arm: [{"seed": s, **res["rows"][str(models[arm, s])]} for s in cfg.seeds] for arm in arms
    }
    summary = {
        arm: {row: {k: mean_std([r[row][k] for r in rs]) for k in METRIC_KEYS} for row in ROWS}
        for arm, rs in runs.items()
    }
    paired = {
        arm: {
            row: {
                k: paired_delta([r["flip-averaged"][k] for r in rs], [r[row][k] for r in rs])
                for k in METRIC_KEYS
            }
            for row in ROWS[2:]
        }
        for arm, rs in runs.items()
    }
    return {
        "generator": cfg.test_generator,
        "poses": cfg.test_poses,
        "fusion": cfg.fusion,
        "fusion_weight": cfg.fusion_weight,
        "pose_sources": res["poses"],
        "canonical": res["canonical"],
        "timing": res["timing"],
        "runs": runs,
        "summary": summary,
        "paired_vs_flip": paired,
    }


def filter_synthetic(
    cfg: BenchConfig,
    ds: Market1501,
    shards: ShardDataset,
    shards_id: dict,
    out: Path,
    device,
    progress: Callable[..., None] | None,
    log: Callable[[str], None],
) -> tuple[np.ndarray, dict]:
    """``--min-confidence``: the positions of the synthetic images whose source class gets at
    least that much from the judge, and what the report says of the filter.

    The default judge is the cached ``cpu``-recipe model of ``cfg.judge_seed`` trained on the
    bench's own training set (its subset too), so it has seen no real image the arms withhold.
    """
    if cfg.judge is not None:
        judge = Path(cfg.judge)
    else:
        judge = cached_model(
            ReidRecipe.named("cpu"),
            cfg.dataset,
            cfg.root,
            seed=cfg.judge_seed,
            device=device,
            workers=cfg.workers,
            progress=progress,
            log=log,
            subset=cfg.subset_args,
        )
    conf = source_confidence(
        judge, shards, shards_id, ds.num_train_ids, ds.name, out, device, cfg.workers, log
    )
    index = keep_confident(conf, cfg.min_confidence)
    info = {
        "judge": str(judge),
        "judge_sha256": file_sha256(judge),
        "min_confidence": cfg.min_confidence,
        "available": len(shards),
        "kept": len(index),
        "dropped": len(shards) - len(index),
    }
    log(
        f"--min-confidence {cfg.min_confidence:g}: kept {info['kept']} of {info['available']} "
        f"synthetic images ({info['dropped']} dropped)"
    )
    return index, info
