"""Where and how work runs: the device (``auto`` picks CUDA when present), the ``torchrun``
environment and seeding, each written once for every stage."""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import torch

from reidaug.errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f'unknown device "{name}"; expected one of: auto, cpu, cuda')
    return torch.device(name)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    # platform.processor() is empty on most Linux systems; /proc/cpuinfo names the CPU
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict:
    """What a result depends on besides its options: library versions, the device, the
    processor and the threads. CPU training is not bit-reproducible across machines, so a
    result says where it was made."""
    from reidaug import __version__

    return {
        "reidaug": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "torchreid": _version("torchreid"),
        "numpy": np.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": _cpu_model(),
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }


@dataclass(frozen=True)
class Launch:
    """What ``torchrun`` tells a process: how many there are, which one it is, and its GPU."""

    world_size: int = 1
    rank: int = 0
    local_rank: int | None = None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def device(self, device: torch.device) -> torch.device:
        """This process's own GPU under ``torchrun`` (``cuda:LOCAL_RANK``), else ``device``."""
        if device.type == "cuda" and self.local_rank is not None:
            return torch.device("cuda", self.local_rank)
        return device


def launch() -> Launch:
    """The ``torchrun`` environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); one process
    without it. Malformed values are a ``UserError`` naming the variable."""

    def read(name: str, default: int | None) -> int | None:
        raw = os.environ.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise UserError(f"environment variable {name}={raw!r} is not an integer") from None
        if value < 0:
            raise UserError(f"environment variable {name}={raw!r} must be 0 or more")
        return value

    world = max(1, read("WORLD_SIZE", 1) or 1)
    rank = read("RANK", 0) or 0
    if rank >= world:
        raise UserError(f"environment variable RANK={rank} must be below WORLD_SIZE={world}")
    return Launch(world, rank, read("LOCAL_RANK", None))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
