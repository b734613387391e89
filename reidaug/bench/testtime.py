"""Pose-fused re-ID evaluation: the four rankings (plain, flip-averaged, pose-fused, pose-fused
+ flip) of one or more re-ID checkpoints, sharing one pass of generation.

Poses of the test images come, per image, from a user's annotation file, the dataset's shipped
annotations (Market's gallery), or a pose estimator, cached by image content under the user
cache; an image with no usable pose keeps its plain feature. Features are cached per
(generator checkpoint, re-ID checkpoint, canonical poses) in ``cache``, so a second evaluation
generates nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reidaug.atomic import atomic_path
from reidaug.bench.fusion import (
    ROWS,
    Fusion,
    canonical_poses,
    fused_rows,
    test_time_features,
)
from reidaug.data import build_dataset
from reidaug.data.keypoints import (
    MISSING,
    NUM_KEYPOINTS,
    is_valid_pose,
    read_annotations,
    write_annotations,
)
from reidaug.data.market1501 import Item, Market1501
from reidaug.data.pairs import load_image
from reidaug.errors import UserError
from reidaug.reidnet import adapter
from reidaug.reidnet import model as reid_model
from reidaug.synthesis.poses import PoseBank
from reidaug.training.load import load_generator
from reidaug.weights import file_sha256


@dataclass
class FusionConfig:
    """Options of a pose-fused evaluation."""

    generator: str
    checkpoint: str | None = None
    poses: int = 8
    fusion: Fusion = "mean"
    weight: float = 1.0
    annotations: str | None = None
    estimator: str = "auto"
    kmeans_seed: int = 0


def file_digest(path: Path) -> str:
    """A content digest of one image file (the estimated-pose cache's key)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:32]


def test_keypoints(
    ds: Market1501,
    items: Sequence[Item],
    annotations: str | None,
    estimator: str,
    cache: Path,
    log: Callable[[str], None],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Keypoints of ``items`` and how many came from where: ``user`` (``annotations``),
    ``shipped`` (the dataset's), ``estimated`` (``estimator``, cached by image content in
    ``cache``) and ``none`` (no shoulder-and-hip pose from any of them)."""
    user = read_annotations(annotations) if annotations else {}
    shipped = ds.annotations("gallery")
    kps = np.full((len(items), NUM_KEYPOINTS, 2), MISSING, np.int64)
    origin = ["none"] * len(items)
    todo = []
    for i, it in enumerate(items):
        for name, src in (("user", user), ("shipped", shipped)):
            if it.name in src and is_valid_pose(src[it.name]):
                kps[i], origin[i] = src[it.name], name
                break
        else:
            todo.append(i)
    if todo and estimator != "none":
        digests = [file_digest(items[i].path) for i in todo]
        known = read_annotations(cache) if cache.is_file() else {}
        missing = [j for j, d in enumerate(digests) if d not in known]
        if missing:
            from reidaug.data.estimate import build_backend, estimate_poses

            log(f"estimating the poses of {len(missing)} test images ({estimator})")
            backend = build_backend(estimator)  # type: ignore[arg-type]
            try:
                paths = [items[todo[j]].path for j in missing]
                found, _ = estimate_poses(paths, backend, 8, progress)
            finally:
                backend.close()
            for j in missing:
                known[digests[j]] = found[items[todo[j]].path.name]
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_annotations(cache, known)
        for i, d in zip(todo, digests, strict=True):
            if is_valid_pose(known[d]):
                kps[i], origin[i] = known[d], "estimated"
    counts = {k: origin.count(k) for k in ("user", "shipped", "estimated", "none")}
    return kps, counts


def _estimator_tag(cfg) -> str:
    """What else decides the estimated poses: MediaPipe's correction file, by digest."""
    if cfg.estimator not in ("auto", "mediapipe"):
        return ""
    from reidaug.data.mediapipe_pose import CORRECTION_FILE
    from reidaug.weights import file_sha256

    return f"-corrected-{file_sha256(CORRECTION_FILE)[:8]}" if CORRECTION_FILE.is_file() else ""


def _cached_features(path: Path, key: dict) -> dict[str, torch.Tensor] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["key"]) != json.dumps(key, sort_keys=True):
                raise UserError(
                    f"{path} holds features of another generator, re-ID model or pose set; "
                    "remove it or use another cache folder"
                )
            return {k: torch.from_numpy(f[k].astype(np.float32)) for k in f.files if k != "key"}
    except (OSError, ValueError, KeyError):
        return None


def _store_features(path: Path, key: dict, feats: dict[str, torch.Tensor]) -> None:
    arrays = {
        k: v.numpy().astype(np.float16 if v.is_floating_point() else v.numpy().dtype)
        for k, v in feats.items()
    }
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, key=np.array(json.dumps(key, sort_keys=True)), **arrays)


#: images of one saved block of the view and feature pass: an interrupted pass resumes from
#: its last finished block, losing minutes rather than the hours a bench's models take
BLOCK = 1024


def _block_paths(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.stem}.block*.npz"))


def _features_by_block(
    todo: dict[Path, tuple[torch.nn.Module, dict, Path, dict]],
    images: Sequence[np.ndarray],
    kps: np.ndarray,
    recipe,
    canon: np.ndarray,
    heatmap: str,
    device,
    progress: Callable[[int, int], None] | None,
    log: Callable[[str], None],
) -> tuple[dict[Path, dict[str, torch.Tensor]], float]:
    """Every model's test-time features, computed :data:`BLOCK` images at a time; each block is
    saved beside the model's cache file, and a block already saved is read, not recomputed.

    Returns the features as the cache holds them (float16 values) and the pass's seconds,
    counting the blocks of earlier, interrupted runs.
    """
    n = len(images)
    saved = sum(bool(_block_paths(path)) for *_, path, _ in todo.values())
    if saved:
        log(f"{saved} model(s) have blocks of an interrupted pass; those are read, not redone")
    blocks: dict[Path, list[dict[str, torch.Tensor]]] = {ck: [] for ck in todo}
    seconds = 0.0
    for lo in range(0, n, BLOCK):
        hi = min(n, lo + BLOCK)
        paths = {
            ck: path.with_name(f"{path.stem}.block{lo:07d}.npz")
            for ck, (*_, path, _) in todo.items()
        }
        keys = {ck: {**key, "block": [lo, hi]} for ck, (*_, key) in todo.items()}
        got = {ck: _cached_features(paths[ck], keys[ck]) for ck in todo}
        need = [ck for ck in todo if got[ck] is None]
        if need:
            t0 = time.perf_counter()
            computed = test_time_features(
                [todo[ck][:2] for ck in need],
                images[lo:hi],
                kps[lo:hi],
                recipe,
                canon,
                heatmap,
                device,
                256,
                (lambda d, t, lo=lo: progress(lo + d, n)) if progress else None,
            )
            ms = torch.tensor(round((time.perf_counter() - t0) * 1000))
            for ck, f in zip(need, computed, strict=True):
                _store_features(paths[ck], keys[ck], {**f, "milliseconds": ms})
                # rank what the cache holds, so a resumed or cached rerun gives the same figures
                got[ck] = _cached_features(paths[ck], keys[ck])
        elif progress:
            progress(hi, n)
        log(f"test-time views and features: {hi} of {n} images")
        # the block's shared pass, once however many models it served
        seconds += max(float(got[ck].pop("milliseconds")) for ck in todo) / 1000
        for ck in todo:
            blocks[ck].append(got[ck])
    feats = {ck: {k: torch.cat([b[k] for b in bs]) for k in bs[0]} for ck, bs in blocks.items()}
    for f in feats.values():
        f["has_pose"] = f["has_pose"].bool()
    return feats, seconds


def rank_rows(ds: Market1501, rows: dict[str, torch.Tensor]) -> dict[str, dict]:
    """mAP and Rank-1/5/10 of each row's features (query rows first, then gallery)."""
    nq = len(ds.query)
    out = {}
    for name, f in rows.items():
        cmc, mAP = adapter.evaluate(
            f[:nq],
            f[nq:],
            [i.pid for i in ds.query],
            [i.pid for i in ds.gallery],
            [i.camid for i in ds.query],
            [i.camid for i in ds.gallery],
        )
        last = len(cmc) - 1
        out[name] = {
            "mAP": float(mAP),
            "rank1": float(cmc[0]),
            "rank5": float(cmc[min(4, last)]),
            "rank10": float(cmc[min(9, last)]),
        }
    return out


def pose_fusion(
    checkpoints: Sequence[str | Path],
    cfg: FusionConfig,
    cache: Path,
    dataset: str | None = None,
    root: str | None = None,
    device: torch.device | str = "cpu",
    progress: Callable[..., None] | None = None,
    log: Callable[[str], None] | None = None,
    subset: tuple[int | None, float | None, int] | None = None,
) -> dict:
    """The four rankings of every re-ID checkpoint on the test split.

    Args:
        checkpoints: re-ID checkpoints trained on the dataset's training ids.
        cache: folder of the feature caches (one file per checkpoint).
        dataset, root: the test data [default: the generator's].
        subset: ``(real_per_id, id_fraction, subset_seed)`` of the models' training set (its
            ids and the canonical poses' bank).

    Returns:
        ``{"rows": {checkpoint: {row: metrics}}, "poses": sources and counts, "canonical":
        the K poses, "timing": seconds and images/s of generation and features of the models
        computed here, seconds of ranking every model, ...}``.
    """
    log = log or (lambda m: None)
    if cfg.poses < 0:
        raise UserError(f"--test-poses must be 0 or more, got {cfg.poses}")
    gen = load_generator(cfg.generator, cfg.checkpoint, device, root)
    gcfg = gen.config
    ds = build_dataset(dataset or gcfg.dataset, root or gcfg.root, gcfg.annotations)
    ds.check_before_run(need_annotations=False)
    if subset is not None:
        ds.restrict_train(*subset)
    bank = PoseBank.from_annotations([it.name for it in ds.train], ds.annotations("train"))
    canon = np.zeros((0, NUM_KEYPOINTS, 2), np.int64)
    if cfg.poses:
        canon = bank.keypoints[canonical_poses(bank, cfg.poses, cfg.kmeans_seed)]
    items = [*ds.query, *ds.gallery]
    pose_cache = reid_model.cache_dir() / "poses" / f"{cfg.estimator}{_estimator_tag(cfg)}.csv"
    kps, origin = test_keypoints(ds, items, cfg.annotations, cfg.estimator, pose_cache, log)
    log(
        "test-image poses: "
        + ", ".join(f"{v} {k}" for k, v in origin.items() if v)
        + f" (of {len(items)})"
    )
    cache.mkdir(parents=True, exist_ok=True)
    base_key = {
        "generator_sha256": gen.sha256,
        "poses": canon.tolist(),
        "keypoints": hashlib.sha256(kps.tobytes()).hexdigest()[:16],
        "images": len(items),
    }
    out: dict = {"rows": {}, "poses": origin, "canonical": canon.tolist(), "timing": {}}
    feats: dict[Path, dict[str, torch.Tensor]] = {}
    todo: dict[Path, tuple[torch.nn.Module, dict, Path, dict]] = {}
    for ck in map(Path, checkpoints):
        key = {**base_key, "reid_sha256": file_sha256(ck)}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        path = cache / f".fusion-{ck.stem}-{digest}.npz"
        cached = _cached_features(path, key)
        if cached is not None:
            log(f"{ck.name}: features from the cache {path}")
            cached["has_pose"] = cached["has_pose"].bool()
            feats[ck] = cached
        else:
            model, meta = reid_model.load_for(ck, ds.name, ds.num_train_ids, device)
            todo[ck] = (model, meta, path, key)
    if todo:
        images = [load_image(it.path, ds.height, ds.width) for it in items]
        log(
            f"generating {len(items)} x {len(canon)} views once and their features by "
            f"{len(todo)} model(s): " + ", ".join(ck.name for ck in todo)
        )
        computed, seconds = _features_by_block(
            todo, images, kps, gen.recipe, canon, gcfg.heatmap, device, progress, log
        )
        out["timing"] = {
            "models": [str(ck) for ck in todo],
            "seconds": round(seconds, 1),
            "images_s": round(len(items) * (1 + len(canon)) / max(seconds, 1e-9), 1),
        }
        for ck, (_, _, path, key) in todo.items():
            _store_features(path, key, computed[ck])
            for part in _block_paths(path):
                part.unlink(missing_ok=True)
            feats[ck] = computed[ck]
    start = time.perf_counter()
    for i, ck in enumerate(map(Path, checkpoints), 1):
        # Four rankings against the whole gallery per model are slow: say which model is ranked.
        log(f"test-time ranking: {ck.name} ({i} of {len(checkpoints)} models)")
        out["rows"][str(ck)] = rank_rows(ds, fused_rows(feats[ck], cfg.fusion, cfg.weight))
    # Millisecond precision: a small set ranks in well under a tenth of a second.
    out["timing"]["ranking_seconds"] = round(time.perf_counter() - start, 3)
    out["row_names"] = list(ROWS)
    return out
