"""The re-ID training loop: a torchreid softmax recipe over a planned sequence of batches.

The loop knows nothing of synthetic data beyond a flag per image: the caller (the bench, the
model cache) supplies a dataset of ``(image, label, synthetic)`` and the batches of each
epoch, so every arm of an experiment trains through the same code. An epoch checkpoint makes
an interrupted run resume on exactly the same data.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from reidaug.atomic import save_torch
from reidaug.data.market1501 import Item
from reidaug.device import seed_everything
from reidaug.errors import UserError
from reidaug.reidnet import adapter
from reidaug.reidnet.backbone import OWN_MODELS
from reidaug.reidnet.recipe import ReidRecipe, lr_factor

Label = Literal["same-id", "lsro", "teacher"]
#: ``plan(epoch)``: the batches of one epoch, as dataset indices.
Plan = Callable[[int], list[list[int]]]


def lsro_loss(logits: torch.Tensor) -> torch.Tensor:
    """LSRO (Zheng et al., ICCV 2017): cross-entropy against the uniform label distribution."""
    return -(F.log_softmax(logits, dim=1)).mean(dim=1).mean()


def soft_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against given label distributions (a teacher's soft labels)."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def batch_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    which: torch.Tensor,
    ce: nn.Module,
    label: Label = "same-id",
    soft_targets: torch.Tensor | None = None,
) -> torch.Tensor:
    """The mean loss of a batch: ``ce`` on real images (``which == 0``) and, per ``label``, on
    synthetic image ``j`` (``which == j + 1``): ``ce`` on its source id, LSRO, or the
    cross-entropy against row ``j`` of ``soft_targets``."""
    syn = which > 0
    if label == "same-id" or not syn.any():
        return ce(logits, y)
    parts = []
    if (~syn).any():
        parts.append(ce(logits[~syn], y[~syn]) * (~syn).sum())
    if label == "lsro":
        parts.append(lsro_loss(logits[syn]) * syn.sum())
    else:
        t = soft_targets[(which[syn] - 1).cpu()].to(logits.device)
        parts.append(soft_loss(logits[syn], t) * syn.sum())
    return sum(parts) / len(y)


class RealImages(Dataset):
    """Real training images as ``(image, label, 0)`` through a transform."""

    def __init__(self, items: Sequence[Item], transform) -> None:
        self.items, self.tf = list(items), transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        it = self.items[i]
        with Image.open(it.path) as im:
            return self.tf(im.convert("RGB")), it.pid, 0


def real_stream(n: int, seed: int, start: int, count: int) -> np.ndarray:
    """Positions ``start .. start+count`` of an endless stream of seeded permutations of ``n``:
    every arm that draws real images from it sees them in the same order."""
    out, pos = [], start
    while pos < start + count:
        k, off = divmod(pos, n)
        perm = np.random.default_rng([seed, k]).permutation(n)
        take = perm[off : off + (start + count - pos)]
        out.append(take)
        pos += len(take)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def real_batches(n_real: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """One epoch of ``n_real // batch_size`` batches of real images only (the baseline plan)."""
    steps = n_real // batch_size
    real = real_stream(n_real, seed, epoch * steps * batch_size, steps * batch_size)
    return [real[s * batch_size : (s + 1) * batch_size].tolist() for s in range(steps)]


def first_difference(old: dict, new: dict) -> str | None:
    """The first key whose value differs, as ``key: OLD there, NEW now``; ``None`` if equal."""
    old, new = json.loads(json.dumps(old)), json.loads(json.dumps(new))
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            return f"{k}: {old.get(k)!r} there, {new.get(k)!r} now"
    return None


def train_reid(
    recipe: ReidRecipe,
    data: Dataset,
    num_classes: int,
    plan: Plan,
    steps_per_epoch: int,
    seed: int = 1,
    device: torch.device | str = "cpu",
    label: Label = "same-id",
    workers: int = 1,
    progress: Callable[..., None] | None = None,
    tag: str = "baseline",
    state_path: Path | None = None,
    key: dict | None = None,
    log: Callable[[str], None] | None = None,
    soft_targets: torch.Tensor | None = None,
) -> tuple[nn.Module, dict]:
    """Train ``recipe`` on ``data`` epoch by epoch, each epoch's batches given by ``plan``.

    Args:
        data: items ``(image tensor, label, synthetic)``; ``synthetic`` is 0 for a real image
            and ``j + 1`` for synthetic image ``j``; the transform is the caller's
            (``adapter.transforms(recipe.height, recipe.width, recipe.transforms)[0]``).
        label: ``lsro`` trains synthetic images against the uniform distribution, ``teacher``
            against row ``j`` of ``soft_targets`` (one label distribution per synthetic image).
        progress: called as ``progress(step, total_steps, "ARM seed S", epoch="E/N", loss=)``.
        state_path: an epoch checkpoint: resumed from when it exists, rewritten after each epoch.
        key: stored in the epoch checkpoint; a checkpoint with another key is refused.
        log: called with one line per finished epoch (readable in a log file).

    Returns:
        ``(model in eval mode, info)`` with ``steps``, ``real_images``, ``synthetic_images``
        (seen during training), ``seconds`` and the last epoch's mean ``loss``.
    """
    if label == "teacher" and soft_targets is None:
        raise ValueError("label='teacher' needs soft_targets")
    seed_everything(seed)
    model = adapter.build_model(recipe.model, num_classes, recipe.pretrained).to(device)
    # channels_last: MobileNetV2's depthwise convolutions run faster in that layout
    fmt = torch.channels_last if recipe.model in OWN_MODELS else torch.contiguous_format
    model = model.to(memory_format=fmt)
    ce = adapter.cross_entropy(num_classes, recipe.label_smooth)
    opt = adapter.optimizer(
        model, recipe.optim, recipe.lr, recipe.weight_decay, recipe.base_lr_mult
    )
    if recipe.warmup_epochs:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: lr_factor(recipe, e))
    else:
        sched = adapter.scheduler(opt, recipe.scheduler, recipe.stepsize, recipe.epochs)
    fixbase = recipe.fixbase_epochs if recipe.pretrained else 0
    info = {"steps": 0, "real_images": 0, "synthetic_images": 0, "seconds": 0.0, "loss": None}
    start = 0
    if state_path is not None and state_path.is_file():
        try:
            st = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise UserError(
                f"cannot read the epoch checkpoint {state_path} ({type(e).__name__}); "
                "remove it to restart this arm"
            ) from None
        diff = first_difference(st.get("key", {}), key or {})
        if diff:
            raise UserError(
                f"{state_path} was trained with other options ({diff}); "
                "use another --out or remove it"
            )
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        torch.set_rng_state(st["torch_rng"])
        start, info = int(st["epoch"]), dict(st["info"])
        if log:
            log(f"{tag} seed {seed}: resuming after epoch {start} from {state_path}")
    total = steps_per_epoch * recipe.epochs
    for epoch in range(start, recipe.epochs):
        t0 = time.perf_counter()
        adapter.train_only(model, adapter.new_layers(model) if epoch < fixbase else None)
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        # torchreid's random crop and erasing draw from Python's RNG, which no epoch checkpoint
        # holds: seeding it per epoch makes a resumed epoch draw what an uninterrupted one does
        random.seed(seed * 1000 + epoch)
        loader = DataLoader(data, batch_sampler=plan(epoch), num_workers=workers, generator=g)
        model.train()
        losses = []
        for x, y, which in loader:
            x, y, which = x.to(device, memory_format=fmt), y.to(device), which.to(device)
            syn = which > 0
            logits = model(x)
            loss = batch_loss(logits, y, which, ce, label, soft_targets)
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
                progress(
                    info["steps"],
                    total,
                    f"{tag} seed {seed}",
                    epoch=f"{epoch + 1}/{recipe.epochs}",
                    loss=float(np.mean(losses[-20:])),
                )
        sched.step()
        info["seconds"] += time.perf_counter() - t0
        info["loss"] = float(np.mean(losses)) if losses else None
        if log:
            log(
                f"{tag} seed {seed}: epoch {epoch + 1}/{recipe.epochs}, loss {info['loss']:.3f}, "
                f"{time.perf_counter() - t0:.0f} s"
            )
        if state_path is not None:
            state = {
                "key": key or {},
                "epoch": epoch + 1,
                "info": info,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "torch_rng": torch.get_rng_state(),
            }
            save_torch(state_path, state)
    adapter.train_only(model, None)
    return model.eval(), info
