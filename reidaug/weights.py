"""Weights from local files only: find them, load them, name what is missing, digest them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from reidaug.errors import UserError


def find(what: str, filename: str, path: str | os.PathLike | None, flag: str, env: str) -> Path:
    """``path``, else ``$env``, else ``filename`` in the torch hub cache; nothing is downloaded.

    A missing file is a ``UserError`` that names it and says where to put it.
    """
    if path is None:
        path = os.environ.get(env) or None
    if path is not None:
        if not Path(path).is_file():
            raise UserError(f"{what} weights not found: {path}")
        return Path(path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cached.is_file():
        return cached
    raise UserError(
        f"{what} weights not found: {filename}. Put the file in {cached.parent}/ or pass "
        f"{flag} FILE (or set {env}); nothing is downloaded"
    )


def load_state(path: str | os.PathLike, what: str) -> dict:
    """A state dict from a weights file, loaded on CPU under torch's ``weights_only`` rule."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"cannot load {what} weights {path}: {type(e).__name__}") from None


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file (checkpoints, shards), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
