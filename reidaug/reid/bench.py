"""``bench``: the same torchreid recipe trained without and with synthetic images, side by side."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
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
from reidaug.synthesis.shards import ShardDataset


def lsro_loss(logits: torch.Tensor) -> torch.Tensor:
    """LSRO (Zheng et al., ICCV 2017): cross-entropy against the uniform label distribution."""
    return -(F.log_softmax(logits, dim=1)).mean(dim=1).mean()


@dataclass
class BenchConfig:
    """Options of a re-ID benchmark; both arms share all of them but the data."""

    dataset: str = "market1501"
    root: str | None = None
    shards: str | None = None
    model: str = "osnet_x0_25"
    height: int = 128
    width: int = 64
    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-4
    label: Literal["same-id", "lsro"] = "same-id"
    synthetic_ratio: float = 1.0
    seeds: list[int] = field(default_factory=lambda: [1])
    pretrained: str | None = None
    workers: int = 1
    out: str = "bench-reid"
    device: str = "auto"


class _Mixed(Dataset):
    """Real training images plus a chosen set of synthetic ones, in one list (one label space)."""

    def __init__(
        self, real: Sequence[Item], shards: ShardDataset | None, syn_idx: np.ndarray, transform
    ) -> None:
        self.real, self.shards, self.syn_idx, self.tf = list(real), shards, syn_idx, transform

    def __len__(self) -> int:
        return len(self.real) + len(self.syn_idx)

    def __getitem__(self, i: int):
        if i < len(self.real):
            it = self.real[i]
            with Image.open(it.path) as im:
                return self.tf(im.convert("RGB")), it.pid, 0
        item = self.shards[int(self.syn_idx[i - len(self.real)])]
        return item["image"], item["label"], 1


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
    keys = ("model", "height", "width", "epochs", "batch_size", "lr", "pretrained")
    return {k: getattr(cfg, k) for k in keys}


def synthetic_per_epoch(cfg: BenchConfig, ds: Market1501, shards: ShardDataset | None) -> int:
    """Synthetic images drawn per epoch: ``synthetic_ratio`` per real training image."""
    return 0 if shards is None else int(round(cfg.synthetic_ratio * len(ds.train)))


def train_reid(
    cfg: BenchConfig,
    ds: Market1501,
    shards: ShardDataset | None = None,
    seed: int = 1,
    device: torch.device | str = "cpu",
    progress: Callable[..., None] | None = None,
    tag: str = "baseline",
) -> nn.Module:
    """Train the torchreid softmax recipe of ``cfg`` on ``ds.train`` (plus ``shards``)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    num_classes = ds.num_train_ids
    model = adapter.build_model(cfg.model, num_classes, cfg.pretrained).to(device)
    tf_train, _ = adapter.transforms(cfg.height, cfg.width)
    if shards is not None:
        shards.transform = tf_train
    ce = adapter.cross_entropy(num_classes)
    opt = adapter.optimizer(model, cfg.lr)
    sched = adapter.scheduler(opt, stepsize=max(1, int(cfg.epochs * 0.7)))
    n_syn = synthetic_per_epoch(cfg, ds, shards)
    for epoch in range(cfg.epochs):
        rng = np.random.default_rng([seed, epoch])
        syn_idx = (
            rng.choice(len(shards), size=n_syn, replace=n_syn > len(shards))
            if n_syn
            else np.zeros(0, int)
        )
        data = _Mixed(ds.train, shards, syn_idx, tf_train)
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, drop_last=len(data) > cfg.batch_size,
                            num_workers=cfg.workers, generator=g)  # fmt: skip
        model.train()
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
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        if progress:
            progress(epoch + 1, cfg.epochs, arm=tag, seed=seed, loss=loss.item())
    return model.eval()


def evaluate_reid(model: nn.Module, ds: Market1501, cfg: BenchConfig, device) -> dict:
    """Query-vs-gallery ranking with torchreid's evaluation: mAP, Rank-1/5/10 and the CMC."""
    meta = {"height": cfg.height, "width": cfg.width}
    qf = embed(model, ds.query, meta, device, 64, cfg.workers)
    gf = embed(model, ds.gallery, meta, device, 64, cfg.workers)
    cmc, mAP = adapter.evaluate(qf, gf, [i.pid for i in ds.query], [i.pid for i in ds.gallery],
                                [i.camid for i in ds.query], [i.camid for i in ds.gallery])  # fmt: skip
    return {"mAP": mAP, "rank1": float(cmc[0]), "rank5": float(cmc[min(4, len(cmc) - 1)]),
            "rank10": float(cmc[min(9, len(cmc) - 1)]), "cmc": cmc.tolist()}  # fmt: skip


def save_model(model: nn.Module, path: Path, cfg: BenchConfig, ds: Market1501) -> None:
    """Write ``model`` as a re-ID checkpoint that ``evaluate --reid-checkpoint`` reads."""
    reid_model.save(model, path, name=cfg.model, height=cfg.height, width=cfg.width,
                    num_classes=ds.num_train_ids, dataset=ds.name, recipe=recipe_of(cfg))  # fmt: skip


def cached_model(
    cfg: BenchConfig,
    device: torch.device | str = "cpu",
    progress: Callable[..., None] | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The re-ID model of ``cfg``'s recipe trained on the real training set (first seed), from
    the user cache, trained and cached on first use."""
    ds = build_dataset(cfg.dataset, cfg.root)
    ds.check_before_run(need_annotations=False)
    path = reid_model.cache_path(ds.name, ds.root, {**recipe_of(cfg), "seed": cfg.seeds[0]})
    if path.is_file():
        (log or (lambda m: None))(f"re-ID model from the cache: {path}")
        return path
    (log or (lambda m: None))(f"training the re-ID model once; it will be cached at {path}")
    model = train_reid(cfg, ds, None, cfg.seeds[0], device, progress, "re-ID model")
    save_model(model, path, cfg, ds)
    return path


def bench(
    cfg: BenchConfig,
    progress: Callable[..., None] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train the torchreid recipe per seed on real data (baseline) and on real + synthetic
    (augmented), evaluate both with torchreid's ranking, and write ``report.json``,
    ``report.md`` and ``cmc.png`` to ``cfg.out``.

    Returns:
        The report: per-seed results, mean and std per arm, and the deltas.

    Example:
        >>> cfg = BenchConfig(dataset="synthetic", root="data/synthetic", shards="shards/", epochs=8)
        >>> report = bench(cfg)  # doctest: +SKIP
    """
    log = log or (lambda msg: None)
    if cfg.synthetic_ratio <= 0:
        raise UserError("--synthetic-ratio must be positive")
    if not cfg.seeds:
        raise UserError("--seeds needs at least one seed")
    device = resolve_device(cfg.device)
    adapter.check_model(cfg.model)  # before any work
    ds = build_dataset(cfg.dataset, cfg.root)
    ds.check_before_run(need_annotations=False)
    if cfg.shards is None:
        raise UserError("--shards DIR is required: the augmented arm needs synthetic images")
    shards = ShardDataset(cfg.shards)
    check_shards(shards, ds)
    runs: dict[str, list[dict]] = {"baseline": [], "augmented": []}
    t0 = time.time()
    for seed in cfg.seeds:
        for arm in ("baseline", "augmented"):
            log(f"seed {seed}: training the {arm} arm")
            model = train_reid(
                cfg, ds, shards if arm == "augmented" else None, seed, device, progress, arm
            )
            if arm == "baseline":
                save_model(model, Path(cfg.out) / f"baseline-seed{seed}.pt", cfg, ds)
            n_syn = synthetic_per_epoch(cfg, ds, shards if arm == "augmented" else None)
            runs[arm].append(
                {**evaluate_reid(model, ds, cfg, device), "synthetic_per_epoch": n_syn}
            )
    summary = {}
    for arm, rs in runs.items():
        summary[arm] = {k: {"mean": float(np.mean([r[k] for r in rs])), "std": float(np.std([r[k] for r in rs]))}
                        for k in ("mAP", "rank1", "rank5", "rank10")}  # fmt: skip
    delta = {
        k: summary["augmented"][k]["mean"] - summary["baseline"][k]["mean"]
        for k in summary["baseline"]
    }
    report = {
        "config": asdict(cfg), "weights": f"ImageNet from {cfg.pretrained}" if cfg.pretrained else "from scratch",
        "train_images": len(ds.train), "synthetic_images_available": len(shards), "runs": runs,
        "summary": summary, "delta": delta, "seconds": round(time.time() - t0, 1),
    }  # fmt: skip
    write_report(Path(cfg.out), report)
    return report


def write_report(out: Path, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out / "report.json")
    s, d, c = report["summary"], report["delta"], report["config"]
    lines = [
        f"# re-ID benchmark: {c['model']} on {c['dataset']}",
        "",
        f"{c['height']}x{c['width']}, {c['epochs']} epochs, batch {c['batch_size']}, labels {c['label']}, "
        f"synthetic ratio {c['synthetic_ratio']}, seeds {c['seeds']}, weights: {report['weights']}.",
        "",
        "| arm | mAP | Rank-1 | Rank-5 | Rank-10 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for arm in ("baseline", "augmented"):
        lines.append(f"| {arm} | " + " | ".join(f"{100 * s[arm][k]['mean']:.1f} ± {100 * s[arm][k]['std']:.1f}"
                                                   for k in ("mAP", "rank1", "rank5", "rank10")) + " |")  # fmt: skip
    lines.append(
        "| delta | "
        + " | ".join(f"{100 * d[k]:+.1f}" for k in ("mAP", "rank1", "rank5", "rank10"))
        + " |"
    )
    (out / "report.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for arm in ("baseline", "augmented"):
        cmc = np.mean([r["cmc"] for r in report["runs"][arm]], axis=0)
        ax.plot(np.arange(1, len(cmc) + 1), 100 * cmc, label=arm)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / ".cmc.tmp.png", dpi=90)
    plt.close(fig)
    os.replace(out / ".cmc.tmp.png", out / "cmc.png")
