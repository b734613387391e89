"""Data parallelism under ``torchrun``: rank helpers, parameter broadcast, gradient averaging.

Gradients are all-reduced explicitly after each backward rather than through the
``DistributedDataParallel`` wrapper, because a GAN step calls D several times per backward and
keeps frozen networks (G1 in stage 2) that DDP's reducer cannot track. The arithmetic is the
same: every rank applies the mean gradient of the global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as td
from torch import nn

from reidaug.device import Launch, launch


def world_size() -> int:
    return td.get_world_size() if td.is_available() and td.is_initialized() else 1


def rank() -> int:
    return td.get_rank() if td.is_available() and td.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE > 1``).

    Returns:
        The device of this rank (``cuda:LOCAL_RANK`` on GPUs).
    """
    env = launch()
    if not env.distributed or td.is_initialized():
        return device
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        device = Launch(env.world_size, env.rank, env.local_rank or 0).device(device)
        torch.cuda.set_device(device)
    td.init_process_group(backend)
    return device


def shutdown() -> None:
    if td.is_available() and td.is_initialized():
        td.destroy_process_group()


def broadcast_parameters(module: nn.Module) -> None:
    """Make every rank start from rank 0's weights and buffers."""
    if world_size() > 1:
        for t in [*module.parameters(), *module.buffers()]:
            td.broadcast(t.data, 0)


def average_gradients(module: nn.Module) -> None:
    """All-reduce and average the gradients of ``module`` across ranks (no-op on one process)."""
    n = world_size()
    if n == 1:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    td.all_reduce(flat)
    flat /= n
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def all_reduce_mean(xs: list[float]) -> list[float]:
    """Means of scalars across ranks, in one collective call."""
    if world_size() == 1:
        return list(xs)
    t = torch.tensor(xs, dtype=torch.float64)
    td.all_reduce(t)
    return (t / world_size()).tolist()
