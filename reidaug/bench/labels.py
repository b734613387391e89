"""What the bench does to synthetic images before training on them: drop the ones a judge does
not recognise (``--min-confidence``) and give the rest a teacher's soft labels
(``--label teacher``).

Both are class probabilities of a re-ID model over the shards' images, computed once and
cached beside the results (``OUT/.confidence.npz``, ``OUT/.teacher-seed<S>.npz``) under a key
naming the model file, the shards and the images, so a rerun reuses them and a changed input
recomputes them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from reidaug.atomic import atomic_path
from reidaug.errors import UserError
from reidaug.reidnet import model as reid_model
from reidaug.synthesis.shards import ShardDataset
from reidaug.weights import file_sha256


class ShardImages(Sequence):
    """The ``uint8`` images of ``shards`` at positions ``index``, as a lazy sequence."""

    def __init__(self, shards: ShardDataset, index: np.ndarray) -> None:
        self.shards, self.index = shards, np.asarray(index, np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        return self.shards.image(*self.shards.locate(int(self.index[i])))


def probabilities(
    model: torch.nn.Module,
    meta: dict,
    images: Sequence,
    temperature: float = 1.0,
    device: torch.device | str = "cpu",
    workers: int = 0,
) -> np.ndarray:
    """``softmax(logits / temperature)`` of ``model`` on ``images`` (test transform), float32."""
    feats = reid_model.embed(model, images, meta, device, 256, workers)
    if not len(feats):
        return np.zeros((0, meta["num_classes"]), np.float32)
    logits = reid_model.class_logits(model, feats)
    return torch.softmax(logits / temperature, dim=1).numpy().astype(np.float32)


def cached_array(
    path: Path, key: dict, compute: Callable[[], np.ndarray], log: Callable[[str], None]
) -> np.ndarray:
    """The array stored at ``path`` under ``key``, else ``compute()`` written there (no pickle:
    the key is stored as a JSON string)."""
    want = json.dumps(key, sort_keys=True)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                if str(f["key"]) == want:
                    log(f"reused {path.name}")
                    return f["values"]
            log(f"{path.name} was made from other inputs; recomputing it")
        except (OSError, ValueError, KeyError):
            log(f"{path.name} is unreadable; recomputing it")
    values = compute()
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, values=values, key=np.array(want))
    return values


def index_digest(index: np.ndarray) -> str:
    """A short digest of which synthetic images are used."""
    return hashlib.sha256(np.asarray(index, np.int64).tobytes()).hexdigest()[:16]


def source_confidence(
    judge_path: Path,
    shards: ShardDataset,
    shards_id: dict,
    num_ids: int,
    dataset: str,
    out: Path,
    device: torch.device | str = "cpu",
    workers: int = 0,
    log: Callable[[str], None] = lambda m: None,
) -> np.ndarray:
    """The judge's probability of each synthetic image's source class, one per shard image."""

    def compute() -> np.ndarray:
        model, meta = reid_model.load_for(judge_path, dataset, num_ids, device, "judge")
        log(f"scoring {len(shards)} synthetic images with the judge {judge_path}")
        everything = np.arange(len(shards))
        p = probabilities(model, meta, ShardImages(shards, everything), 1.0, device, workers)
        return p[everything, shards.column("label")].astype(np.float32)

    key = {"judge_sha256": file_sha256(judge_path), "shards": shards_id}
    return cached_array(out / ".confidence.npz", key, compute, log)


def keep_confident(confidence: np.ndarray, threshold: float) -> np.ndarray:
    """Positions of the images whose source class gets at least ``threshold``."""
    keep = np.flatnonzero(confidence >= threshold)
    if not len(keep):
        raise UserError(
            f"--min-confidence {threshold:g} drops every synthetic image (the judge's highest "
            f"source-class probability is {float(confidence.max(initial=0)):.3f}); lower it"
        )
    return keep


def teacher_labels(
    teacher_path: Path,
    shards: ShardDataset,
    shards_id: dict,
    index: np.ndarray,
    temperature: float,
    num_ids: int,
    dataset: str,
    cache: Path,
    device: torch.device | str = "cpu",
    workers: int = 0,
    log: Callable[[str], None] = lambda m: None,
) -> np.ndarray:
    """The teacher's ``softmax(logits / temperature)`` over the training ids for the synthetic
    images at ``index`` (rows in that order, float16), cached at ``cache``."""
    if not temperature > 0:
        raise UserError(f"--teacher-temperature must be positive, got {temperature}")

    def compute() -> np.ndarray:
        model, meta = reid_model.load_for(teacher_path, dataset, num_ids, device, "teacher")
        log(f"teacher labels of {len(index)} synthetic images from {teacher_path}")
        images = ShardImages(shards, index)
        # float16 halves a cache that holds one row of every training id per image
        return probabilities(model, meta, images, temperature, device, workers).astype(np.float16)

    key = {
        "teacher_sha256": file_sha256(teacher_path),
        "temperature": temperature,
        "shards": shards_id,
        "index": index_digest(index),
    }
    return cached_array(cache, key, compute, log)
