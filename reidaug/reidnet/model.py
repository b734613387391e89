"""Trained re-ID models as files: save, load, a per-dataset cache, and embedding images.

A re-ID checkpoint is a ``torch.save`` dict: ``model`` (torchreid name), ``height``, ``width``,
``num_classes``, ``dataset``, ``recipe`` (the ``ReidRecipe`` fields it was trained with),
``quality`` (its mAP and Rank-1 on the real queries, or None) and ``state_dict``.
``reidaug bench-reid`` writes one per arm and seed (``OUT/baseline-seed<S>.pt``);
``reidaug evaluate --metrics idp`` and the identity loss read one, or train and cache one under
:func:`cache_dir`.
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

from reidaug.atomic import save_torch
from reidaug.config import cache_dir
from reidaug.data.market1501 import Item, Market1501
from reidaug.errors import UserError
from reidaug.reidnet import adapter


def cache_path(dataset: str, root: str | os.PathLike, recipe: dict) -> Path:
    """Where the re-ID model of ``dataset`` at ``root`` trained with ``recipe`` is cached."""
    key = json.dumps(
        {"dataset": dataset, "root": str(Path(root).resolve()), **recipe}, sort_keys=True
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir() / "reid" / f"{dataset}-{recipe['model']}-{digest}.pt"


def save(
    model: nn.Module,
    path: Path,
    *,
    name: str,
    height: int,
    width: int,
    num_classes: int,
    dataset: str,
    recipe: dict,
    quality: dict | None = None,
) -> None:
    """Write a re-ID checkpoint atomically; ``quality`` is its ``{"mAP", "rank1"}`` on the
    dataset's real queries, when known."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ck = {
        "model": name,
        "height": height,
        "width": width,
        "num_classes": num_classes,
        "dataset": dataset,
        "recipe": recipe,
        "quality": quality,
        "state_dict": state,
    }
    save_torch(path, ck)


def save_trained(
    model: nn.Module, path: Path, recipe, ds: Market1501, quality: dict | None = None
) -> None:
    """:func:`save` of a model trained with ``recipe`` (a ``ReidRecipe``) on ``ds``; only the mAP
    and Rank-1 of ``quality`` (figures on the real queries) travel with it."""
    save(
        model,
        path,
        name=recipe.model,
        height=recipe.height,
        width=recipe.width,
        num_classes=ds.num_train_ids,
        dataset=ds.name,
        recipe=recipe.to_dict(),
        quality={k: quality[k] for k in ("mAP", "rank1")} if quality else None,
    )


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


def load_for(
    path: str | os.PathLike,
    dataset: str,
    num_ids: int,
    device: torch.device | str = "cpu",
    what: str = "re-ID checkpoint",
) -> tuple[nn.Module, dict]:
    """:func:`load`, refusing a checkpoint not trained on ``dataset``'s ``num_ids`` training ids
    (``what`` names the file's role in the message)."""
    model, meta = load(path, device)
    if meta["dataset"] != dataset or meta["num_classes"] != num_ids:
        raise UserError(
            f"{what} {path} was trained on {meta['dataset']} ({meta['num_classes']} ids), "
            f"not {dataset} ({num_ids} ids)"
        )
    return model, meta


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
def class_logits(model: nn.Module, feats: torch.Tensor) -> torch.Tensor:
    """Training-label logits from eval-mode features (torchreid's ``classifier`` head)."""
    head = getattr(model, "classifier", None)
    if head is None:
        raise UserError(f"{type(model).__name__} has no classifier head")
    device = next(head.parameters()).device
    return head(feats.to(device)).float().cpu()


def classify(model: nn.Module, feats: torch.Tensor) -> torch.Tensor:
    """Predicted training labels from eval-mode features."""
    return class_logits(model, feats).argmax(1)


def evaluate_model(
    model: nn.Module,
    ds: Market1501,
    meta: dict,
    device: torch.device | str = "cpu",
    workers: int = 0,
    gallery_features: torch.Tensor | None = None,
) -> dict:
    """Query-against-gallery ranking of ``ds`` with torchreid's evaluation (the standard
    protocol): ``mAP``, ``rank1``/``rank5``/``rank10`` and the ``cmc`` list.

    Args:
        meta: at least the model's input ``height`` and ``width``.
        gallery_features: the gallery's features when the caller has them already.
    """
    gf = gallery_features
    if gf is None:
        gf = embed(model, ds.gallery, meta, device, 64, workers)
    qf = embed(model, ds.query, meta, device, 64, workers)
    cmc, mAP = adapter.evaluate(
        qf,
        gf,
        [i.pid for i in ds.query],
        [i.pid for i in ds.gallery],
        [i.camid for i in ds.query],
        [i.camid for i in ds.gallery],
    )
    last = len(cmc) - 1
    return {
        "mAP": mAP,
        "rank1": float(cmc[0]),
        "rank5": float(cmc[min(4, last)]),
        "rank10": float(cmc[min(9, last)]),
        "cmc": cmc.tolist(),
    }
