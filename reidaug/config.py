"""Typed configuration of a training run, stored as ``training_options.json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from reidaug.errors import UserError

Variant = Literal["g1-l1", "g1-posemask", "g1-d", "full"]
StageSel = Literal["1", "2", "all"]


@dataclass
class TrainConfig:
    """Everything that defines a training run. ``None`` means the model's paper default."""

    model: str = "pg2"
    dataset: str = "market1501"
    root: str | None = None
    annotations: str | None = None
    stage: StageSel = "all"
    variant: Variant = "full"
    iters1: int = 22000
    iters2: int = 14000
    batch_size: int = 16
    width: int = 128
    d_width: int | None = None
    lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    heatmap: Literal["pg2", "gaussian"] = "pg2"
    flip: bool = True
    seed: int = 0
    device: str = "auto"
    workers: int = 1
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    max_seconds: float | None = None
    channels_last: bool = True
    out: str = "runs"
    # model-specific weights (see each recipe for its defaults)
    lambda_l1: float | None = None
    lambda_bg: float | None = None
    lambda_d1: float | None = None
    lambda_d2: float | None = None
    num_scales: int = 2
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UserError(f"unknown training options: {', '.join(unknown)}")
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"cannot read training options {path}: {e}") from None
