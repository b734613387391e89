"""Networks, registered by model name."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from reidaug.config import GeneratorShape
from reidaug.errors import UserError
from reidaug.models.blocks import DCGANDiscriminator, UNetGenerator, channel_schedule
from reidaug.models.mscgan import build_mscgan
from reidaug.models.pg2 import build_pg2

MODELS: dict[str, Callable[..., dict[str, nn.Module]]] = {}
SHAPE_FIELDS = ("skip", "act", "init", "norm", "upsample", "deform_output")


def register_model(name: str, fn: Callable[..., dict[str, nn.Module]]) -> None:
    """Register a function that builds a model's networks by name."""
    MODELS[name] = fn


def build(name: str, shape: GeneratorShape | None = None, **kwargs) -> dict[str, nn.Module]:
    """Build a model's networks by name (``G1``, ``G2``, ``D`` ...).

    Args:
        shape: the generators' shape; or give its fields (``skip="add"`` ...) as keywords.
        kwargs: the model builder's own arguments (``width``, ``d_width`` ...).

    Example:
        >>> nets = build("pg2", width=16)
        >>> sorted(nets)
        ['D', 'G1', 'G2']
    """
    if name not in MODELS:
        raise UserError(f'Unknown model "{name}"; expected one of: {", ".join(MODELS)}')
    fields = {k: kwargs.pop(k) for k in SHAPE_FIELDS if k in kwargs}
    if shape is not None and fields:
        raise TypeError("give the generator shape either as shape= or as its fields, not both")
    return MODELS[name](shape=shape or GeneratorShape(**fields), **kwargs)


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
