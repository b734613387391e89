"""A re-ID training recipe: the torchreid softmax settings that define a trained model."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from reidaug.config import with_preset
from reidaug.errors import UserError
from reidaug.reidnet import adapter


@dataclass
class ReidRecipe:
    """What defines a trained re-ID model (besides its data and seed); the defaults are the
    ``cpu`` recipe. Validated when constructed."""

    model: str = "osnet_x0_25"
    height: int = 128
    width: int = 64
    epochs: int = 38
    batch_size: int = 64
    optim: str = "amsgrad"
    lr: float = 3e-3
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    stepsize: list[int] = field(default_factory=lambda: [20])
    label_smooth: bool = True
    transforms: list[str] = field(default_factory=lambda: ["random_flip"])
    fixbase_epochs: int = 0
    pretrained: str | None = None

    def __post_init__(self) -> None:
        check_recipe(self)

    @classmethod
    def named(cls, name: str = "cpu", **overrides) -> ReidRecipe:
        """The named recipe with ``overrides`` on top (``None`` values keep the recipe's)."""
        return cls(**with_preset(RECIPES, name, overrides, cls, "recipe"))

    def to_dict(self) -> dict:
        return asdict(self)


RECIPE_FIELDS = tuple(f.name for f in fields(ReidRecipe))


def check_recipe(r) -> None:
    """Refuse settings that cannot train (one ``UserError`` naming the flag); ``r`` is any
    object with the recipe's fields."""
    if not (math.isfinite(r.lr) and r.lr > 0):
        raise UserError(f"--lr must be a positive number, got {r.lr}")
    if not (math.isfinite(r.weight_decay) and r.weight_decay >= 0):
        raise UserError(f"--weight-decay must be a non-negative number, got {r.weight_decay}")
    if r.epochs < 1 or r.batch_size < 2:
        raise UserError("--epochs must be at least 1 and --batch-size at least 2")
    if r.scheduler in ("single_step", "multi_step") and not r.stepsize:
        raise UserError(f"--scheduler {r.scheduler} needs --stepsize")
    bad = [n for n in r.transforms if n not in adapter.TRANSFORMS]
    if bad:
        raise UserError(
            f'unknown transform "{bad[0]}"; expected some of: {", ".join(adapter.TRANSFORMS)}'
        )
    adapter.check_choice("optimizer", r.optim, adapter.OPTIMIZERS)
    adapter.check_choice("scheduler", r.scheduler, adapter.SCHEDULERS)


#: Named recipes; every field can still be overridden. ``cpu`` (the dataclass defaults) is
#: calibrated on Market-1501 on a 2-core CPU (osnet_x0_25 from scratch, about 45 mAP / 69
#: Rank-1); ``gpu`` is torchreid's published OSNet softmax recipe at 256x128 (its model zoo's
#: ``osnet_x1_0`` schedule). ``fixbase_epochs`` trains only the classifier for that many epochs,
#: and applies only with ``pretrained``.
RECIPES: dict[str, dict] = {
    "cpu": {k: v for k, v in asdict(ReidRecipe()).items() if k != "pretrained"},
    "gpu": {
        **{k: v for k, v in asdict(ReidRecipe()).items() if k != "pretrained"},
        "model": "osnet_x1_0",
        "height": 256,
        "width": 128,
        "epochs": 250,
        "lr": 1.5e-3,
        "fixbase_epochs": 10,
    },
}
