"""The options of a with/without re-ID benchmark, validated when constructed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from reidaug.config import with_preset
from reidaug.errors import UserError
from reidaug.names import ARMS, DEFAULT_ARMS, LABELS, MODEL_ROLES
from reidaug.reidnet.recipe import RECIPE_FIELDS, RECIPES, ReidRecipe, check_recipe

METRIC_KEYS = ("mAP", "rank1", "rank5", "rank10")
#: Fields that define a trained model of either arm; a changed one refuses to mix with old results.
MODEL_FIELDS = ("dataset", *RECIPE_FIELDS)
#: Fields that define each arm besides those (the augmented arm also its shards).
ARM_FIELDS = {
    "baseline": (),
    "augmented": ("label", "synthetic_ratio", "extra_steps", "mix"),  # + filter_key()
    "baseline-matched": ("synthetic_ratio", "mix"),
}


@dataclass
class BenchConfig:
    """Options of a re-ID benchmark; both arms share all of them but the data.

    The defaults are the ``cpu`` recipe; :meth:`from_recipe` starts from a named one.
    """

    dataset: str = "market1501"
    root: str | None = None
    shards: str | None = None
    recipe: str = "cpu"
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
    warmup_epochs: int = 0
    base_lr_mult: float = 1.0
    #: how synthetic images are labelled: their source's id, LSRO's uniform distribution, or
    #: the same seed's finished baseline model's ``softmax(logits / teacher_temperature)``
    label: Literal["same-id", "lsro", "teacher"] = "same-id"
    teacher_temperature: float = 1.0
    #: drop synthetic images whose source class gets less than this from ``judge`` (a re-ID
    #: checkpoint; by default the cached ``cpu``-recipe model of ``judge_seed`` on the same
    #: training set, a seed the bench does not train)
    min_confidence: float | None = None
    judge: str | None = None
    judge_seed: int = MODEL_ROLES["confidence-judge"]
    synthetic_ratio: float = 0.25
    extra_steps: bool = False
    #: ``replace``: synthetic images take a ``synthetic_ratio`` share of each batch of the
    #: recipe's size (equal steps, fewer real images a step); ``add``: every step takes the
    #: baseline's real images plus ``round(batch_size * synthetic_ratio)`` synthetic ones
    mix: Literal["replace", "add"] = "replace"
    #: scarce real data: a seeded subset of the training set, the same for every arm and seed
    #: (``real_per_id`` images of each identity, an ``id_fraction`` share of the identities)
    real_per_id: int | None = None
    id_fraction: float | None = None
    subset_seed: int = 0
    #: tune on a validation split instead of the test set: ``val_ids`` training identities
    #: (seed ``val_seed``) become the queries and gallery, the rest the training set
    val_ids: int | None = None
    val_seed: int = 0
    #: test-time pose fusion of every trained model: each query and gallery image also
    #: generated in ``test_poses`` canonical poses by ``test_generator`` (a run directory)
    test_poses: int = 0
    test_generator: str | None = None
    fusion: str = "mean"
    fusion_weight: float = 1.0
    test_annotations: str | None = None
    pose_estimator: str = "auto"
    #: the arms whose models test-time fusion ranks (``None``: every arm); each model adds
    #: its embedding of every generated view to the pass
    test_arms: list[str] | None = None
    #: train nothing: rebuild the report from the finished (arm, seed) results in ``out``,
    #: listing those made with other options instead of refusing them (units of one study
    #: made on several machines or from a regenerated generator file)
    report_only: bool = False
    seeds: list[int] = field(default_factory=lambda: [1])
    arms: list[str] = field(default_factory=lambda: list(DEFAULT_ARMS))
    pretrained: str | None = None
    workers: int = 1
    out: str = "bench-reid"
    device: str = "auto"

    def __post_init__(self) -> None:
        check_config(self)

    @classmethod
    def from_recipe(cls, recipe: str = "cpu", **overrides) -> BenchConfig:
        """The named recipe with ``overrides`` on top (``None`` values are ignored)."""
        return cls(**with_preset(RECIPES, recipe, overrides, cls, "recipe"))

    @property
    def subset_args(self) -> tuple[int | None, float | None, int] | None:
        """``restrict_train``'s arguments of the training subset, ``None`` for the whole set."""
        if self.real_per_id is None and self.id_fraction is None:
            return None
        return (self.real_per_id, self.id_fraction, self.subset_seed)

    def model_key(self) -> dict:
        """The :data:`MODEL_FIELDS` of a result key (later fields left out at their neutral
        value, as :meth:`ReidRecipe.to_dict` does)."""
        return {"dataset": self.dataset, **self.reid.to_dict()}

    @property
    def reid(self) -> ReidRecipe:
        """The re-ID recipe both arms train."""
        return ReidRecipe(**{k: getattr(self, k) for k in RECIPE_FIELDS})


def check_config(cfg: BenchConfig) -> None:
    """Refuse options that cannot train (one ``UserError`` naming the flag)."""
    check_recipe(cfg)
    if not 0 < cfg.synthetic_ratio < 1:
        raise UserError(
            f"--synthetic-ratio is the synthetic share of the training images and must lie in "
            f"(0, 1), got {cfg.synthetic_ratio}"
        )
    if cfg.label not in LABELS:
        raise UserError(f'unknown label "{cfg.label}"; expected one of: {", ".join(LABELS)}')
    if not cfg.teacher_temperature > 0:
        raise UserError(f"--teacher-temperature must be positive, got {cfg.teacher_temperature}")
    if cfg.label == "teacher" and "augmented" in cfg.arms and "baseline" not in cfg.arms:
        raise UserError(
            "--label teacher labels each seed's synthetic images with that seed's baseline "
            "model; add baseline to --arms"
        )
    if cfg.min_confidence is not None and not 0 < cfg.min_confidence < 1:
        raise UserError(f"--min-confidence must lie in (0, 1), got {cfg.min_confidence}")
    if cfg.min_confidence is not None and cfg.judge is None and cfg.judge_seed in cfg.seeds:
        raise UserError(
            f"--judge-seed {cfg.judge_seed} is one of the bench's --seeds: the judge that filters "
            "the synthetic images must not be a model the bench trains"
        )
    if not cfg.seeds:
        raise UserError("--seeds needs at least one seed")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise UserError(f"--seeds repeats a seed: {cfg.seeds}")
    bad = [a for a in cfg.arms if a not in ARMS]
    if bad or not cfg.arms:
        raise UserError(
            f'unknown arm "{bad[0] if bad else ""}"; expected some of: {", ".join(ARMS)}'
        )
    if cfg.mix not in ("replace", "add"):
        raise UserError(f'unknown mix "{cfg.mix}"; expected one of: replace, add')
    if "baseline-matched" in cfg.arms and cfg.mix != "add":
        raise UserError(
            "the baseline-matched arm is the control of --mix add (as many images a step as the "
            "augmented arm, all real); add --mix add"
        )
    if cfg.extra_steps and cfg.mix == "add":
        raise UserError("--extra-steps adds steps to --mix replace; --mix add adds images instead")
    if cfg.test_poses < 0:
        raise UserError(f"--test-poses must be 0 or more, got {cfg.test_poses}")
    if cfg.test_poses and cfg.test_generator is None:
        raise UserError("--test-poses needs --test-generator RUN, the generator of the views")
    if cfg.test_arms is not None:
        if not cfg.test_arms:
            raise UserError("--test-arms needs at least one arm")
        outside = [a for a in cfg.test_arms if a not in cfg.arms]
        if outside:
            raise UserError(
                f'--test-arms names "{outside[0]}", which is not one of --arms '
                f"({', '.join(cfg.arms)})"
            )
    if cfg.fusion not in ("mean", "max"):
        raise UserError(f'unknown fusion "{cfg.fusion}"; expected one of: mean, max')
    if cfg.report_only and cfg.test_poses:
        raise UserError(
            "--report-only trains nothing and ranks no views; drop --test-poses (a plain rerun "
            "rebuilds the report with its test-time pass)"
        )
    if cfg.report_only and cfg.min_confidence is not None:
        raise UserError("--report-only filters no synthetic images; drop --min-confidence")
    if cfg.val_ids is not None and cfg.test_poses:
        raise UserError(
            "--test-poses ranks generated views of the test split; --val-ids replaces it with a "
            "validation split: drop one of them"
        )
    if cfg.workers < 0:
        raise UserError(f"--workers must be 0 or more, got {cfg.workers}")
