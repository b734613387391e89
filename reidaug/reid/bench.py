"""``bench``: the same torchreid recipe trained without and with synthetic images, side by side.

Both arms take the same optimiser steps by default: the augmented arm replaces a
``synthetic_ratio`` share of every batch with synthetic images (``extra_steps`` adds them on
top instead, as reidaug did before 0.3, and the report says which was used). Every
(arm, seed) result is written as soon as it finishes, with its model; an interrupted arm resumes
from its last epoch; rerunning the same command skips what is done and rebuilds the report.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from reidaug.data import build_dataset
from reidaug.data.market1501 import Item, Market1501
from reidaug.device import resolve_device
from reidaug.errors import UserError
from reidaug.reid import adapter
from reidaug.reid import model as reid_model
from reidaug.reid.model import embed
from reidaug.reid.stats import mean_std, paired_delta
from reidaug.synthesis.shards import ShardDataset, read_manifest

ARMS = ("baseline", "augmented")
METRIC_KEYS = ("mAP", "rank1", "rank5", "rank10")

#: Named recipes; every field can still be overridden. ``cpu`` is calibrated on Market-1501 on a
#: 2-core CPU (44.6 mAP / 69.2 Rank-1 in 28 minutes); ``gpu`` is torchreid's published OSNet
#: softmax recipe at 256x128 (its model zoo's ``osnet_x1_0`` schedule). ``fixbase_epochs``
#: trains only the classifier for that many epochs, and applies only with ``pretrained``.
RECIPES: dict[str, dict] = {
    "cpu": {"model": "osnet_x0_25", "height": 128, "width": 64, "epochs": 38, "batch_size": 64,
            "optim": "amsgrad", "lr": 3e-3, "weight_decay": 5e-4, "scheduler": "cosine",
            "stepsize": [20], "label_smooth": True, "transforms": ["random_flip"], "fixbase_epochs": 0},
    "gpu": {"model": "osnet_x1_0", "height": 256, "width": 128, "epochs": 250, "batch_size": 64,
            "optim": "amsgrad", "lr": 1.5e-3, "weight_decay": 5e-4, "scheduler": "cosine",
            "stepsize": [20], "label_smooth": True, "transforms": ["random_flip"], "fixbase_epochs": 10},
}  # fmt: skip

#: Fields that define a trained model of either arm; a changed one refuses to mix with old results.
MODEL_FIELDS = ("dataset", "model", "height", "width", "epochs", "batch_size", "optim", "lr",
                "weight_decay", "scheduler", "stepsize", "label_smooth", "transforms",
                "fixbase_epochs", "pretrained")  # fmt: skip
#: Fields that define the augmented arm besides those.
AUGMENTED_FIELDS = ("label", "synthetic_ratio", "extra_steps")


def lsro_loss(logits: torch.Tensor) -> torch.Tensor:
    """LSRO (Zheng et al., ICCV 2017): cross-entropy against the uniform label distribution."""
    return -(F.log_softmax(logits, dim=1)).mean(dim=1).mean()


@dataclass
class BenchConfig:
    """Options of a re-ID benchmark; both arms share all of them but the data.

    The defaults are the ``cpu`` recipe; :meth:`from_recipe` starts from a named one.
    """

    dataset: str = "market1501"
    root: str | None = None
    shards: str | None = None
    recipe: str = "cpu"
    model: str = "osnet_x0_25"
    height: int = 128
    width: int = 64
    epochs: int = 38
    batch_size: int = 64
    optim: str = "amsgrad"
    lr: float = 3e-3
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    stepsize: list[int] = field(default_factory=lambda: [20])
    label_smooth: bool = True
    transforms: list[str] = field(default_factory=lambda: ["random_flip"])
    fixbase_epochs: int = 0
    label: Literal["same-id", "lsro"] = "same-id"
    synthetic_ratio: float = 0.25
    extra_steps: bool = False
    seeds: list[int] = field(default_factory=lambda: [1])
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    pretrained: str | None = None
    workers: int = 1
    out: str = "bench-reid"
    device: str = "auto"

    @classmethod
    def from_recipe(cls, recipe: str = "cpu", **overrides) -> BenchConfig:
        """The named recipe with ``overrides`` on top (``None`` values are ignored)."""
        if recipe not in RECIPES:
            raise UserError(f'unknown recipe "{recipe}"; expected one of: {", ".join(RECIPES)}')
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise UserError(f"unknown bench options: {', '.join(unknown)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**RECIPES[recipe], **given, "recipe": recipe})


def check_config(cfg: BenchConfig) -> None:
    """Refuse options that cannot train (one ``UserError`` naming the flag)."""
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise UserError(f"--lr must be a positive number, got {cfg.lr}")
    if not (math.isfinite(cfg.weight_decay) and cfg.weight_decay >= 0):
        raise UserError(f"--weight-decay must be a non-negative number, got {cfg.weight_decay}")
    if cfg.epochs < 1 or cfg.batch_size < 2:
        raise UserError("--epochs must be at least 1 and --batch-size at least 2")
    if not 0 < cfg.synthetic_ratio < 1:
        raise UserError(
            f"--synthetic-ratio is the synthetic share of the training images and must lie in "
            f"(0, 1), got {cfg.synthetic_ratio}"
        )
    if not cfg.seeds:
        raise UserError("--seeds needs at least one seed")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise UserError(f"--seeds repeats a seed: {cfg.seeds}")
    bad = [a for a in cfg.arms if a not in ARMS]
    if bad or not cfg.arms:
        raise UserError(
            f'unknown arm "{bad[0] if bad else ""}"; expected some of: {", ".join(ARMS)}'
        )
    if cfg.scheduler in ("single_step", "multi_step") and not cfg.stepsize:
        raise UserError(f"--scheduler {cfg.scheduler} needs --stepsize")
    adapter.transforms(cfg.height, cfg.width, cfg.transforms)  # names checked here
    adapter.check_choice("optimizer", cfg.optim, adapter.OPTIMIZERS)
    adapter.check_choice("scheduler", cfg.scheduler, adapter.SCHEDULERS)


class _Mixed(Dataset):
    """Real training images (indices ``0..N-1``) and synthetic ones (``N..N+M-1``), one label
    space; items are ``(image, label, is_synthetic)``."""

    def __init__(self, real: Sequence[Item], shards: ShardDataset | None, transform) -> None:
        self.real, self.shards, self.tf = list(real), shards, transform

    def __len__(self) -> int:
        return len(self.real) + (len(self.shards) if self.shards is not None else 0)

    def __getitem__(self, i: int):
        if i < len(self.real):
            it = self.real[i]
            with Image.open(it.path) as im:
                return self.tf(im.convert("RGB")), it.pid, 0
        j = i - len(self.real)
        img = self.shards.image(*self.shards.locate(j))
        return self.tf(Image.fromarray(img)), int(self.shards.column("label")[j]), 1


def check_shards(shards: ShardDataset, ds: Market1501) -> None:
    """Refuse shards of another dataset: their attributes and their pid -> label map must fit."""
    if len(shards) == 0:
        raise UserError("the shard folder holds no images")
    names = {a.get("dataset") for a in shards.attrs}
    if names != {ds.name}:
        raise UserError(
            f"shards were made from {', '.join(sorted(map(str, names)))}, not {ds.name}"
        )
    train_map = {it.raw_pid: it.pid for it in ds.train}
    pid, label = shards.column("pid"), shards.column("label")
    bad = [
        (p, q) for p, q in zip(pid.tolist(), label.tolist(), strict=True) if train_map.get(p) != q
    ]
    if bad:
        raise UserError(
            f"shard pid {bad[0][0]} (label {bad[0][1]}) is not a training id of {ds.name} at {ds.root}"
        )


def recipe_of(cfg: BenchConfig) -> dict:
    """The fields that define a trained re-ID model (the cache key and checkpoint record)."""
    return {k: getattr(cfg, k) for k in MODEL_FIELDS if k != "dataset"}


def shards_identity(folder: str | os.PathLike, shards: ShardDataset) -> dict:
    """What identifies a synthetic set: its job (manifest) and its size."""
    job = read_manifest(Path(folder))
    keys = ("checkpoint_sha256", "poses", "strategy", "seed", "shard_size", "sources")
    return {**{k: job.get(k) for k in keys}, "images": len(shards)}


def result_key(cfg: BenchConfig, arm: str, ds: Market1501, shards_id: dict | None) -> dict:
    """Everything that alters an (arm, seed) result: old results must match it to be reused."""
    key = {k: getattr(cfg, k) for k in MODEL_FIELDS}
    key |= {"root": str(Path(ds.root).resolve()), "train_images": len(ds.train)}
    if arm == "augmented":
        key |= {k: getattr(cfg, k) for k in AUGMENTED_FIELDS} | {"shards": shards_id}
    return json.loads(json.dumps(key))  # as stored in JSON (tuples become lists)


def _first_difference(old: dict, new: dict) -> str | None:
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            return f"{k}: {old.get(k)!r} there, {new.get(k)!r} now"
    return None


def _real_stream(n: int, seed: int, start: int, count: int) -> np.ndarray:
    """Positions ``start .. start+count`` of an endless stream of seeded permutations of ``n``."""
    out, pos = [], start
    while pos < start + count:
        k, off = divmod(pos, n)
        perm = np.random.default_rng([seed, k]).permutation(n)
        take = perm[off : off + (start + count - pos)]
        out.append(take)
        pos += len(take)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def split_batch(cfg: BenchConfig) -> tuple[int, int]:
    """``(real, synthetic)`` images in every batch of the augmented arm under equal steps."""
    n_syn = min(cfg.batch_size - 1, max(1, round(cfg.synthetic_ratio * cfg.batch_size)))
    return cfg.batch_size - n_syn, n_syn


def steps_per_epoch(cfg: BenchConfig, n_real: int, augmented: bool) -> int:
    """Optimiser steps in one epoch: ``n_real // batch`` for both arms, unless ``extra_steps``."""
    if augmented and cfg.extra_steps:
        return (n_real + extra_synthetic(cfg, n_real)) // cfg.batch_size
    return n_real // cfg.batch_size


def extra_synthetic(cfg: BenchConfig, n_real: int) -> int:
    """Synthetic images added to each epoch with ``extra_steps`` (their share is the ratio)."""
    return int(round(n_real * cfg.synthetic_ratio / (1 - cfg.synthetic_ratio)))


def batch_plan(cfg: BenchConfig, n_real: int, n_syn: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch as ``_Mixed`` indices, a pure function of its arguments (so an
    interrupted arm resumes on the same data). ``n_syn == 0`` is the baseline arm.

    Real images come from one endless stream of seeded permutations, so both arms see them in the
    same order; under equal steps the augmented arm takes ``split_batch`` real and synthetic
    images per batch and cycles through the real ones more slowly.
    """
    b = cfg.batch_size
    rng = np.random.default_rng([seed, epoch, 7])
    if n_syn and cfg.extra_steps:
        m = extra_synthetic(cfg, n_real)
        idx = np.concatenate([np.random.default_rng([seed, epoch]).permutation(n_real),
                              n_real + rng.choice(n_syn, size=m, replace=m > n_syn)])  # fmt: skip
        idx = rng.permutation(idx)
        return [idx[i : i + b].tolist() for i in range(0, len(idx) - b + 1, b)]
    steps = n_real // b
    nr, ns = split_batch(cfg) if n_syn else (b, 0)
    real = _real_stream(n_real, seed, epoch * steps * nr, steps * nr)
    syn = n_real + rng.choice(n_syn, size=steps * ns, replace=steps * ns > n_syn) if ns else []
    return [
        [
            *real[s * nr : (s + 1) * nr].tolist(),
            *(syn[s * ns : (s + 1) * ns].tolist() if ns else []),
        ]
        for s in range(steps)
    ]


def _save_state(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_reid(
    cfg: BenchConfig,
    ds: Market1501,
    shards: ShardDataset | None = None,
    seed: int = 1,
    device: torch.device | str = "cpu",
    progress: Callable[..., None] | None = None,
    tag: str = "baseline",
    state_path: Path | None = None,
    key: dict | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[nn.Module, dict]:
    """Train the torchreid softmax recipe of ``cfg`` on ``ds.train`` (plus ``shards``).

    Args:
        shards: synthetic images for the augmented arm (``None``: the baseline arm).
        progress: called as ``progress(step, total_steps, arm=, seed=, epoch=, epochs=, loss=)``.
        state_path: an epoch checkpoint: resumed from when it exists, rewritten after each epoch.
        key: stored in the epoch checkpoint; a checkpoint with another key is refused.
        log: called with one line per finished epoch (readable in a log file).

    Returns:
        ``(model in eval mode, info)`` with ``steps``, ``real_images``, ``synthetic_images``
        (seen during training), ``seconds`` and the last epoch's mean ``loss``.
    """
    n_real, b = len(ds.train), cfg.batch_size
    if n_real < b:
        raise UserError(f"--batch-size {b} exceeds the {n_real} training images")
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    num_classes = ds.num_train_ids
    model = adapter.build_model(cfg.model, num_classes, cfg.pretrained).to(device)
    tf_train, _ = adapter.transforms(cfg.height, cfg.width, cfg.transforms)
    ce = adapter.cross_entropy(num_classes, cfg.label_smooth)
    opt = adapter.optimizer(model, cfg.optim, cfg.lr, cfg.weight_decay)
    sched = adapter.scheduler(opt, cfg.scheduler, cfg.stepsize, cfg.epochs)
    fixbase = cfg.fixbase_epochs if cfg.pretrained else 0
    n_syn = len(shards) if shards is not None else 0
    info = {"steps": 0, "real_images": 0, "synthetic_images": 0, "seconds": 0.0, "loss": None}
    start = 0
    if state_path is not None and state_path.is_file():
        try:
            st = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise UserError(f"cannot read the epoch checkpoint {state_path} ({type(e).__name__}); "
                            "remove it to restart this arm") from None  # fmt: skip
        diff = _first_difference(st.get("key", {}), key or {})
        if diff:
            raise UserError(
                f"{state_path} was trained with other options ({diff}); use another --out or remove it"
            )
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        torch.set_rng_state(st["torch_rng"])
        start, info = int(st["epoch"]), dict(st["info"])
        if log:
            log(f"{tag} seed {seed}: resuming after epoch {start} from {state_path}")
    data = _Mixed(ds.train, shards, tf_train)
    per_epoch = steps_per_epoch(cfg, n_real, n_syn > 0)
    total = per_epoch * cfg.epochs
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        adapter.train_only(model, ["classifier"] if epoch < fixbase else None)
        batches = batch_plan(cfg, n_real, n_syn, seed, epoch)
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        loader = DataLoader(data, batch_sampler=batches, num_workers=cfg.workers, generator=g)
        model.train()
        losses = []
        for x, y, syn in loader:
            x, y, syn = x.to(device), y.to(device), syn.to(device).bool()
            logits = model(x)
            if cfg.label == "lsro" and syn.any():
                parts = []
                if (~syn).any():
                    parts.append(ce(logits[~syn], y[~syn]) * (~syn).sum())
                parts.append(lsro_loss(logits[syn]) * syn.sum())
                loss = sum(parts) / len(y)
            else:
                loss = ce(logits, y)
            if not torch.isfinite(loss):
                raise UserError(
                    f"re-ID training diverged ({tag} seed {seed}, epoch {epoch + 1}: loss "
                    f"{loss.item()}); lower --lr"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            n_s = int(syn.sum())
            info["steps"] += 1
            info["synthetic_images"] += n_s
            info["real_images"] += len(y) - n_s
            if progress:
                progress(info["steps"], total, arm=tag, seed=seed, epoch=epoch + 1,
                         epochs=cfg.epochs, loss=float(np.mean(losses[-20:])))  # fmt: skip
        sched.step()
        info["seconds"] += time.perf_counter() - t0
        info["loss"] = float(np.mean(losses)) if losses else None
        if log:
            log(f"{tag} seed {seed}: epoch {epoch + 1}/{cfg.epochs}, loss {info['loss']:.3f}, "
                f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
        if state_path is not None:
            _save_state(state_path, {
                "key": key or {}, "epoch": epoch + 1, "info": info, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "torch_rng": torch.get_rng_state(),
            })  # fmt: skip
    adapter.train_only(model, None)
    return model.eval(), info


def evaluate_reid(model: nn.Module, ds: Market1501, cfg: BenchConfig, device) -> dict:
    """Query-vs-gallery ranking with torchreid's evaluation: mAP, Rank-1/5/10 and the CMC."""
    meta = {"height": cfg.height, "width": cfg.width}
    qf = embed(model, ds.query, meta, device, 64, cfg.workers)
    gf = embed(model, ds.gallery, meta, device, 64, cfg.workers)
    cmc, mAP = adapter.evaluate(qf, gf, [i.pid for i in ds.query], [i.pid for i in ds.gallery],
                                [i.camid for i in ds.query], [i.camid for i in ds.gallery])  # fmt: skip
    return {"mAP": mAP, "rank1": float(cmc[0]), "rank5": float(cmc[min(4, len(cmc) - 1)]),
            "rank10": float(cmc[min(9, len(cmc) - 1)]), "cmc": cmc.tolist()}  # fmt: skip


def save_model(
    model: nn.Module, path: Path, cfg: BenchConfig, ds: Market1501, quality: dict | None = None
) -> None:
    """Write ``model`` as a re-ID checkpoint that ``evaluate --reid-checkpoint`` reads;
    ``quality`` (its mAP and Rank-1 on the real queries) travels with it."""
    q = {k: quality[k] for k in ("mAP", "rank1")} if quality else None
    reid_model.save(model, path, name=cfg.model, height=cfg.height, width=cfg.width,
                    num_classes=ds.num_train_ids, dataset=ds.name, recipe=recipe_of(cfg),
                    quality=q)  # fmt: skip


def cached_model(
    cfg: BenchConfig,
    device: torch.device | str = "cpu",
    progress: Callable[..., None] | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The re-ID model of ``cfg``'s recipe trained on the real training set (first seed), from
    the user cache; trained (resumably, epoch by epoch) and cached on first use."""
    log = log or (lambda m: None)
    check_config(cfg)
    ds = build_dataset(cfg.dataset, cfg.root)
    ds.check_before_run(need_annotations=False)
    seed = cfg.seeds[0]
    path = reid_model.cache_path(ds.name, ds.root, {**recipe_of(cfg), "seed": seed})
    if path.is_file():
        log(f"re-ID model from the cache: {path}")
        return path
    log(
        f"training the re-ID model once ({cfg.recipe} recipe, seed {seed}); it will be cached at {path}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = {**result_key(cfg, "baseline", ds, None), "seed": seed}
    state = path.with_name(f".{path.stem}.state.pt")
    model, _ = train_reid(cfg, ds, None, seed, device, progress, "re-ID model", state, key, log)
    save_model(model, path, cfg, ds, evaluate_reid(model, ds, cfg, device))
    state.unlink(missing_ok=True)
    return path


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
    finished results whose options match and refuses ones that do not.

    Returns:
        The report: per-seed results, mean and std per arm, and the paired deltas.

    Example:
        >>> cfg = BenchConfig.from_recipe("cpu", dataset="synthetic", root="data", shards="shards/", epochs=8)
        >>> report = bench(cfg)  # doctest: +SKIP
    """
    log = log or (lambda msg: None)
    check_config(cfg)
    device = resolve_device(cfg.device)
    adapter.check_model(cfg.model)  # before any work
    ds = build_dataset(cfg.dataset, cfg.root)
    ds.check_before_run(need_annotations=False)
    shards, shards_id = None, None
    if "augmented" in cfg.arms:
        if cfg.shards is None:
            raise UserError("--shards DIR is required: the augmented arm needs synthetic images")
        shards = ShardDataset(cfg.shards)
        check_shards(shards, ds)
        shards_id = shards_identity(cfg.shards, shards)
    elif cfg.shards is not None:
        raise UserError(
            "--shards is used only by the augmented arm; add it to --arms or drop --shards"
        )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    for seed in cfg.seeds:
        for arm in cfg.arms:
            key = result_key(cfg, arm, ds, shards_id)
            res = out / f"{arm}-seed{seed}.json"
            if res.is_file():
                diff = _first_difference(_read_json(res).get("key", {}), key)
                if diff:
                    raise UserError(
                        f"{res} was made with other options ({diff}); use another --out or remove it"
                    )
                log(f"{arm} seed {seed}: finished earlier, skipped ({res})")
                continue
            log(f"seed {seed}: training the {arm} arm")
            model, info = train_reid(cfg, ds, shards if arm == "augmented" else None, seed, device,
                                     progress, arm, out / f".{arm}-seed{seed}.state.pt", key, log)  # fmt: skip
            metrics = evaluate_reid(model, ds, cfg, device)
            save_model(model, out / f"{arm}-seed{seed}.pt", cfg, ds, metrics)
            _write_json(res, {"arm": arm, "seed": seed, **metrics, **info, "key": key})
            (out / f".{arm}-seed{seed}.state.pt").unlink(missing_ok=True)
    report = build_report(cfg, out, ds, shards)
    write_report(out, report)
    return report


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(
            f"cannot read {path} ({type(e).__name__}); remove it to redo that run"
        ) from None


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def build_report(cfg: BenchConfig, out: Path, ds: Market1501, shards: ShardDataset | None) -> dict:
    """The report of the finished (arm, seed) results in ``out`` for ``cfg``'s seeds and arms."""
    runs = {arm: [_read_json(out / f"{arm}-seed{s}.json") for s in cfg.seeds] for arm in cfg.arms}
    for rs in runs.values():
        for r in rs:
            r.pop("key", None)
    summary = {
        arm: {k: mean_std([r[k] for r in rs]) for k in METRIC_KEYS} for arm, rs in runs.items()
    }
    report = {
        "config": asdict(cfg),
        "weights": f"ImageNet from {cfg.pretrained}" if cfg.pretrained else "from scratch",
        "steps": "extra (synthetic added on top)" if cfg.extra_steps else "equal (synthetic replace a share of each batch)",
        "train_images": len(ds.train),
        "synthetic_images_available": len(shards) if shards is not None else 0,
        "runs": runs,
        "summary": summary,
        "seconds": round(sum(r["seconds"] for rs in runs.values() for r in rs), 1),
    }  # fmt: skip
    if set(ARMS) <= set(runs):
        pd = {k: paired_delta([r[k] for r in runs["baseline"]], [r[k] for r in runs["augmented"]])
              for k in METRIC_KEYS}  # fmt: skip
        report["paired_delta"] = {k: {"seeds": list(cfg.seeds), **v} for k, v in pd.items()}
        report["delta"] = {k: v["mean"] for k, v in pd.items()}
    return report


def delta_text(d: dict) -> str:
    """``+1.2 [-0.3, +2.7] gain`` in percentage points, for tables."""
    ci = (
        "no interval (1 seed)"
        if d["ci95"] is None
        else f"[{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]"
    )
    return f"{100 * d['mean']:+.1f} {ci} {d['verdict']}"


def summary_rows(report: dict) -> list[tuple[str, list[str]]]:
    """The report's table: one row per arm (mean ± std over seeds, in %), then the paired delta
    with its 95 % interval when both arms ran; columns are ``METRIC_KEYS``."""
    s = report["summary"]
    rows = [(arm, [f"{100 * s[arm][k]['mean']:.1f} ± {100 * s[arm][k]['std']:.1f}" for k in METRIC_KEYS])
            for arm in s]  # fmt: skip
    if "paired_delta" in report:
        pd = report["paired_delta"]
        rows.append(("paired delta, 95 % CI", [delta_text(pd[k]) for k in METRIC_KEYS]))
    return rows


def write_report(out: Path, report: dict) -> None:
    """``report.json``, ``report.md`` and ``cmc.png``, each written to a temp file and renamed."""
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "report.json", report)
    c = report["config"]
    lines = [
        f"# re-ID benchmark: {c['model']} on {c['dataset']} ({c['recipe']} recipe)",
        "",
        f"{c['height']}x{c['width']}, {c['epochs']} epochs, batch {c['batch_size']}, {c['optim']} lr "
        f"{c['lr']:g}, weight decay {c['weight_decay']:g}, {c['scheduler']} schedule, transforms "
        f"{', '.join(c['transforms'])}, labels {c['label']}, synthetic ratio {c['synthetic_ratio']}, "
        f"steps: {report['steps']}, seeds {c['seeds']}, weights: {report['weights']}.",
        "",
        "| arm | mAP | Rank-1 | Rank-5 | Rank-10 |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in summary_rows(report)]
    if "paired_delta" in report:
        pd = report["paired_delta"]
        lines += ["", "Per-seed deltas (augmented - baseline, percentage points):", ""]
        for i, seed in enumerate(pd["mAP"]["seeds"]):
            lines.append(
                f"- seed {seed}: "
                + ", ".join(f"{k} {100 * pd[k]['per_seed'][i]:+.1f}" for k in METRIC_KEYS)
            )
    lines += ["", f"Training time: {report['seconds'] / 60:.1f} min over all runs."]
    tmp = out / ".report.md.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out / "report.md")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for arm, rs in report["runs"].items():
        cmc = np.mean([r["cmc"] for r in rs], axis=0)
        ax.plot(np.arange(1, len(cmc) + 1), 100 * cmc, label=arm)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / ".cmc.tmp.png", dpi=90)
    plt.close(fig)
    os.replace(out / ".cmc.tmp.png", out / "cmc.png")
