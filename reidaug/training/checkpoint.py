"""Single-file checkpoints: networks, optimisers, stage, step, config and RNG states.

Written to a temp file and renamed, so a crash never leaves a half-written checkpoint. No
pickled modules: only tensors, numbers, strings and the config dict, so loading works under
torch's ``weights_only=True`` default.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from reidaug import __version__
from reidaug.atomic import save_torch
from reidaug.errors import UserError


def rng_state() -> dict:
    """Torch, CUDA, numpy and Python RNG states in a form ``weights_only`` loading accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (
            kind,
            torch.from_numpy(keys.astype(np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        ),
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])


def save(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_torch(
        path,
        {"reidaug_version": __version__, **payload},
        what=f"checkpoint {path}",
        kept="earlier checkpoints are kept",
    )
    return path


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint; a missing or unreadable file is a ``UserError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many kinds for a truncated or foreign file
        raise UserError(f"cannot load checkpoint {path}: {type(e).__name__}") from None
    if not isinstance(ckpt, dict) or "nets" not in ckpt or "config" not in ckpt:
        raise UserError(f"{path} is not a reidaug checkpoint")
    return ckpt


def finite(nets: dict) -> bool:
    """Whether every floating-point tensor of ``{net: state_dict}`` is finite."""
    return all(
        bool(torch.isfinite(t).all())
        for sd in nets.values()
        for t in sd.values()
        if torch.is_tensor(t) and t.is_floating_point()
    )


#: Largest weight magnitude of a checkpoint worth resuming: trained generators and
#: discriminators keep their weights far below it; a diverged run passes it long before the
#: weights overflow (finite weights of 1e9 still pass ``finite``).
SANE_WEIGHT = 1e4


def sane(nets: dict) -> bool:
    """Whether the weights of ``{net: state_dict}`` are finite and of a trained network's size
    (normalisation statistics, which follow the data, are not judged)."""
    return finite(nets) and all(
        float(t.abs().max()) <= SANE_WEIGHT
        for sd in nets.values()
        for k, t in sd.items()
        if torch.is_tensor(t) and t.is_floating_point() and t.numel() and "running_" not in k
    )


def newest_sane(run_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint of a run whose weights load and are :func:`sane`."""
    for path in sorted(Path(run_dir, "checkpoints").glob("step-*.pt"), reverse=True):
        try:
            if sane(load(path)["nets"]):
                return path
        except UserError:
            continue
    return None


def latest(run_dir: str | os.PathLike) -> Path | None:
    """The newest checkpoint of a run directory, by global step."""
    files = sorted(Path(run_dir, "checkpoints").glob("step-*.pt"))
    return files[-1] if files else None
