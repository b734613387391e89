"""Trained re-ID models as files: save, load, a per-dataset cache, and embedding images.

A re-ID checkpoint is a ``torch.save`` dict: ``model`` (torchreid name), ``height``, ``width``,
``num_classes``, ``dataset``, ``recipe`` (the ``BenchConfig`` fields it was trained with),
``quality`` (its mAP and Rank-1 on the real queries, or None) and ``state_dict``.
``reidaug bench-reid`` writes one per arm and seed (``OUT/baseline-seed<S>.pt``); ``reidaug evaluate --metrics idp`` reads one, or trains and caches
one under :func:`cache_dir`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from reidaug.data.market1501 import Item
from reidaug.errors import UserError
from reidaug.reid import adapter


def cache_dir() -> Path:
    """``$REIDAUG_CACHE``, else ``$XDG_CACHE_HOME/reidaug``, else ``~/.cache/reidaug``."""
    if os.environ.get("REIDAUG_CACHE"):
        return Path(os.environ["REIDAUG_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reidaug"


def cache_path(dataset: str, root: str | os.PathLike, recipe: dict) -> Path:
    """Where the re-ID model of ``dataset`` at ``root`` trained with ``recipe`` is cached."""
    key = json.dumps(
        {"dataset": dataset, "root": str(Path(root).resolve()), **recipe}, sort_keys=True
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir() / "reid" / f"{dataset}-{recipe['model']}-{digest}.pt"


def save(model: nn.Module, path: Path, *, name: str, height: int, width: int, num_classes: int,
         dataset: str, recipe: dict, quality: dict | None = None) -> None:  # fmt: skip
    """Write a re-ID checkpoint atomically (temp file renamed into place); ``quality`` is its
    ``{"mAP", "rank1"}`` on the dataset's real queries, when known."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"model": name, "height": height, "width": width, "num_classes": num_classes,
                "dataset": dataset, "recipe": recipe, "quality": quality, "state_dict": state}, tmp)  # fmt: skip
    os.replace(tmp, path)


def load(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """A re-ID checkpoint as ``(model in eval mode, metadata)``; a bad file is a ``UserError``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"re-ID checkpoint not found: {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        meta = {k: ck[k] for k in ("model", "height", "width", "num_classes", "dataset")}
    except Exception as e:
        raise UserError(f"{path} is not a reidaug re-ID checkpoint ({type(e).__name__})") from None
    model = adapter.build_model(meta["model"], meta["num_classes"])
    model.load_state_dict(ck["state_dict"])
    meta["recipe"] = ck.get("recipe", {})
    meta["quality"] = ck.get("quality")
    return model.to(device).eval(), meta


class _Images(Dataset):
    """Image files or ``uint8 (H, W, 3)`` arrays through a torchreid test transform."""

    def __init__(self, images: Sequence, transform) -> None:
        self.images, self.tf = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = self.images[i]
        if isinstance(x, Item):
            with Image.open(x.path) as im:
                return self.tf(im.convert("RGB"))
        return self.tf(Image.fromarray(np.asarray(x)))


@torch.no_grad()
def embed(
    model: nn.Module,
    images: Sequence,
    meta: dict,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    workers: int = 0,
) -> torch.Tensor:
    """Features of ``images`` (dataset ``Item``s or ``uint8`` arrays), one row per image."""
    _, tf = adapter.transforms(meta["height"], meta["width"])
    loader = DataLoader(_Images(images, tf), batch_size=batch_size, num_workers=workers)
    model.eval()
    feats = [model(x.to(device)).float().cpu() for x in loader]
    return torch.cat(feats) if feats else torch.zeros(0)


@torch.no_grad()
def classify(model: nn.Module, feats: torch.Tensor) -> torch.Tensor:
    """Predicted training labels from eval-mode features (torchreid's ``classifier`` head)."""
    head = getattr(model, "classifier", None)
    if head is None:
        raise UserError(f"{type(model).__name__} has no classifier head")
    device = next(head.parameters()).device
    return head(feats.to(device)).argmax(1).cpu()
