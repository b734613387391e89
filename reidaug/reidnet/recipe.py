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
    #: ImageNet weights of the backbone: a file, ``"imagenet"`` (found offline, see
    #: :func:`~reidaug.reidnet.backbone.find_weights`), or ``None`` (from scratch)
    pretrained: str | None = None
    #: linear learning-rate warm-up from a tenth of the schedule's rate over this many epochs
    warmup_epochs: int = 0
    #: the backbone's learning rate as a multiple of the head's (``lr``)
    base_lr_mult: float = 1.0

    def __post_init__(self) -> None:
        check_recipe(self)

    @classmethod
    def named(cls, name: str = "cpu", **overrides) -> ReidRecipe:
        """The named recipe with ``overrides`` on top (``None`` values keep the recipe's)."""
        return cls(**with_preset(RECIPES, name, overrides, cls, "recipe"))

    def to_dict(self) -> dict:
        """The fields, leaving out the later ones at their neutral value, so that the keys of
        models trained before those fields existed still match."""
        return {k: v for k, v in asdict(self).items() if NEUTRAL.get(k, _KEEP) != v}


_KEEP = object()
#: Fields a model key leaves out at this value (they change nothing there).
NEUTRAL = {"warmup_epochs": 0, "base_lr_mult": 1.0}
RECIPE_FIELDS = tuple(f.name for f in fields(ReidRecipe))


def lr_factor(recipe: ReidRecipe, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based) as a share of ``recipe.lr``: the warm-up
    times torchreid's schedule (cosine to 0 over the epochs, or steps of 0.1)."""
    if recipe.scheduler == "cosine":
        f = 0.5 * (1 + math.cos(math.pi * epoch / recipe.epochs))
    elif recipe.scheduler == "single_step":
        f = 0.1 ** (epoch // recipe.stepsize[0])
    else:
        f = 0.1 ** sum(epoch >= s for s in recipe.stepsize)
    if epoch < recipe.warmup_epochs:
        f *= 0.1 + 0.9 * epoch / recipe.warmup_epochs
    return f


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
    if not 0 <= r.warmup_epochs < r.epochs:
        raise UserError(
            f"--warmup-epochs must lie in [0, --epochs), got {r.warmup_epochs} of {r.epochs}"
        )
    if not 0 <= r.fixbase_epochs < r.epochs:
        raise UserError(
            f"--fixbase-epochs must lie in [0, --epochs), got {r.fixbase_epochs} of {r.epochs}: "
            "the backbone would never be trained"
        )
    if not (math.isfinite(r.base_lr_mult) and r.base_lr_mult > 0):
        raise UserError(f"--base-lr-mult must be a positive number, got {r.base_lr_mult}")


_SCRATCH = {k: v for k, v in asdict(ReidRecipe()).items() if k != "pretrained"}
#: Named recipes; every field can still be overridden. ``cpu`` (the dataclass defaults) is
#: calibrated on Market-1501 on a 2-core CPU (osnet_x0_25 from scratch, about 45 mAP / 69
#: Rank-1); ``gpu`` is torchreid's published OSNet softmax recipe at 256x128 (its model zoo's
#: ``osnet_x1_0`` schedule). ``pretrained`` fine-tunes the ImageNet MobileNetV2 with a BN-neck
#: at 128x64 the way reid-strong-baseline fine-tunes its ResNet-50: Adam 3.5e-4 for every layer
#: after a linear warm-up, cosine decay, label smoothing, flip + crop + random erasing (a
#: tenfold head rate lost 6.6 mAP on the validation split at K = 2).
#: ``fixbase_epochs`` trains only the head for that many epochs (needs ``pretrained``).
RECIPES: dict[str, dict] = {
    "cpu": _SCRATCH,
    "pretrained": {
        **_SCRATCH,
        "model": "mobilenetv2_bnneck",
        "pretrained": "imagenet",
        "epochs": 30,
        "optim": "adam",
        "lr": 3.5e-4,
        "warmup_epochs": 3,
        "transforms": ["random_flip", "random_crop", "random_erase"],
    },
    "gpu": {
        **_SCRATCH,
        "model": "osnet_x1_0",
        "height": 256,
        "width": 128,
        "epochs": 250,
        "lr": 1.5e-3,
        "fixbase_epochs": 10,
    },
}
