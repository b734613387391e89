"""The scorer registry: each metric is a small object fed batches of generated test pairs.

A scorer is built once per evaluation by its factory, ``factory(ctx) -> Scorer``, and then
sees every protocol in turn: ``start(protocol)``, ``add(batch)`` for each batch of pairs,
``records()`` for that protocol's figures; after the last protocol, ``finish()`` gives figures
that belong to no protocol (a judge's own quality, say). Factories that score several metrics
with one network (IS, mask-IS and FID share Inception) return the same object for each name
through ``ctx.shared``; the engine feeds each object once.

Adding a metric is one module with a scorer and one ``register_scorer`` line.

Example:
    >>> class Mean:
    ...     def __init__(self, ctx): self.values = []
    ...     def start(self, protocol): self.protocol, self.values = protocol, []
    ...     def add(self, batch): self.values += [float(im.mean()) for im in batch.images["G1"]]
    ...     def records(self): return [record("mean", self.protocol, "G1", self.values)]
    ...     def finish(self): return []
    >>> register_scorer("mean", Mean)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from reidaug.config import EvalConfig
from reidaug.data.market1501 import Market1501
from reidaug.data.pairs import Pair
from reidaug.data.pose import apply_mask
from reidaug.errors import UserError

if TYPE_CHECKING:
    from reidaug.training.load import Generator

COPY, REAL = "copy baseline", "real target"
#: the training-free part warp of the condition onto the target pose (a reference row)
WARP = "warp"


@dataclass
class Batch:
    """A batch of test pairs of one protocol.

    Attributes:
        protocol: ``pg2`` or ``posegan``.
        pairs: the (condition, target) image names.
        images: ``uint8 (N, H, W, 3)`` per source: the model's outputs (``G1``, ``G2``) or
            ``images``, the training-free part warp, the copy baseline (the condition) and the
            real target.
        masks: the protocol's evaluation masks of the targets, ``float (N, H, W)`` in {0, 1}.
    """

    protocol: str
    pairs: list[Pair]
    images: dict[str, np.ndarray]
    masks: np.ndarray

    @property
    def target(self) -> np.ndarray:
        return self.images[REAL]

    @cached_property
    def masked(self) -> dict[str, np.ndarray]:
        """``images`` with everything outside the mask set to 0, as ``uint8(mask * image)``."""
        return {s: apply_mask(v, self.masks) for s, v in self.images.items()}


@dataclass
class EvalContext:
    """What a scorer factory may use: the config, the dataset, the device, the generator (or
    ``None`` for images or shards), a log callback, a progress callback, and ``shared``, a dict
    for objects several scorers use (one network, one gallery embedding)."""

    cfg: EvalConfig
    ds: Market1501
    device: torch.device
    generator: Generator | None = None
    log: Callable[[str], None] = lambda msg: None
    progress: Callable[..., None] | None = None
    shared: dict[str, Any] = field(default_factory=dict)
    #: objects given in memory instead of files (tests): e.g. ``inception_state_dict``
    overrides: dict[str, Any] = field(default_factory=dict)


class Scorer(Protocol):
    def start(self, protocol: str) -> None: ...

    def add(self, batch: Batch) -> None: ...

    def records(self) -> list[dict]: ...

    def finish(self) -> list[dict]: ...


ScorerFactory = Callable[[EvalContext], Scorer]
SCORERS: dict[str, ScorerFactory] = {}


def register_scorer(name: str, factory: ScorerFactory) -> None:
    """Make ``name`` a valid ``--metrics`` entry scored by ``factory(ctx)``."""
    SCORERS[name] = factory


def check_names(names: Sequence[str]) -> None:
    """Refuse unknown metric names, listing the valid ones."""
    for n in names:
        if n not in SCORERS:
            raise UserError(f'unknown metric "{n}"; expected one of: {", ".join(SCORERS)}')


def build_scorers(names: Sequence[str], ctx: EvalContext) -> list[Scorer]:
    """One scorer object per distinct object the factories return, in ``names`` order."""
    check_names(names)
    out: list[Scorer] = []
    for n in names:
        s = SCORERS[n](ctx)
        if not any(s is o for o in out):
            out.append(s)
    return out


def figure(
    metric: str, protocol: str, source: str, value: float, n: int, std: float = 0.0, **extra
) -> dict:
    """One figure as every scorer reports it (and ``metric-*.jsonl`` stores it)."""
    return {
        "metric": metric,
        "protocol": protocol,
        "source": source,
        "value": float(value),
        "std": float(std),
        "n": int(n),
        **extra,
    }


def record(metric: str, protocol: str, source: str, values: Sequence[float], **extra) -> dict:
    """One figure: the mean of ``values`` with its std and count."""
    return figure(metric, protocol, source, np.mean(values), len(values), np.std(values), **extra)
