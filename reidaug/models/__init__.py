"""Networks, registered by model name."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from reidaug.errors import UserError
from reidaug.models.blocks import DCGANDiscriminator, UNetGenerator, channel_schedule
from reidaug.models.mscgan import build_mscgan
from reidaug.models.pg2 import build_pg2

MODELS: dict[str, Callable[..., dict[str, nn.Module]]] = {}


def register_model(name: str, fn: Callable[..., dict[str, nn.Module]]) -> None:
    """Register a function that builds a model's networks by name."""
    MODELS[name] = fn


def build(name: str, **kwargs) -> dict[str, nn.Module]:
    """Build a model's networks by name (``G1``, ``G2``, ``D`` ...).

    Example:
        >>> nets = build("pg2", width=16)
        >>> sorted(nets)
        ['D', 'G1', 'G2']
    """
    if name not in MODELS:
        raise UserError(f'Unknown model "{name}"; expected one of: {", ".join(MODELS)}')
    return MODELS[name](**kwargs)


register_model("pg2", build_pg2)
register_model("mscgan", build_mscgan)

__all__ = [
    "MODELS",
    "DCGANDiscriminator",
    "UNetGenerator",
    "build",
    "channel_schedule",
    "register_model",
]
