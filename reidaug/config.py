"""Typed configurations: a training run (stored as ``training_options.json``) and an evaluation."""

from __future__ import annotations

import json
import math
import os
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal, Union, get_args, get_origin, get_type_hints

from reidaug.errors import UserError


def cache_dir() -> Path:
    """``$REIDAUG_CACHE``, else ``$XDG_CACHE_HOME/reidaug``, else ``~/.cache/reidaug``."""
    if os.environ.get("REIDAUG_CACHE"):
        return Path(os.environ["REIDAUG_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reidaug"


Variant = Literal["g1-l1", "g1-posemask", "g1-d", "full"]
StageSel = Literal["1", "2", "all"]
Skip = Literal["concat", "add", "deform"]
Act = Literal["relu", "elu"]
Init = Literal["torch", "xavier"]
Norm = Literal["none", "batch", "instance"]
Upsample = Literal["paper", "nearest-1x1"]
DeformOutput = Literal["image", "residual"]

#: Named starting points for ``TrainConfig``; every field stays overridable.
#: ``paper`` is the papers' setting; ``cpu`` is what reaches the quality floor on a 2-core CPU
#: (see the README's generator table for the sweep behind it).
PRESETS: dict[str, dict] = {
    "paper": {},
    "cpu": {
        "width": 16,
        "d_width": 16,
        "skip": "add",
        "batch_size": 16,
        "lr": 5e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "norm": "batch",
        "upsample": "nearest-1x1",
        "lr_decay": 0.5,
        "iters1": 30000,
        "iters2": 10000,
    },
}

#: Options a resumed run may change (recorded with the step in ``training_options.json``);
#: all others define the run and are refused with ``--resume``.
CHANGEABLE = (
    "iters1",
    "iters2",
    "max_seconds",
    "workers",
    "device",
    "log_every",
    "sample_every",
    "checkpoint_every",
    "keep_checkpoints",
    "stage",
    "lr",
    "root",
    "lambda_l1",
    "lambda_adv",
    "lambda_bg",
    "lambda_d1",
    "lambda_d2",
    "lambda_id",
    "id_checkpoint",
    "id_checkpoint_sha256",
    "lr_decay",
    "lambda_ssim",
    "lambda_d3",
    "lambda_nn",
    "lambda_perceptual",
)


@dataclass(frozen=True)
class GeneratorShape:
    """How the generators are built, passed whole from the config to the U-Net; validated when
    constructed. The defaults are both papers'.

    Attributes:
        skip: ``concat`` joins each encoder feature map to the decoder (both papers); ``add``
            sums them (about half the cost per image, Deformable GAN's and Pose-Transfer's);
            ``deform`` adds to each of the first four levels' sums the source image's features
            warped part by part to the target pose (Deformable GAN's deformable skips), and
            gives the generator the part-warped source image as an input.
        act: ``relu`` (both papers) or ``elu`` (PG2's released code).
        init: ``torch`` (PyTorch's default) or ``xavier`` (PG2's released code).
        norm: ``none`` (both papers), ``batch`` (Pose-Transfer's generators) or ``instance``.
        upsample: each paper's decoder upsampling, or ``nearest-1x1`` (PG2's released code).
        deform_output: with ``skip="deform"``, G1's image is the network's output (``image``)
            or the part-warped source plus the network's output, which starts at zero
            (``residual``: the network corrects the warp).
    """

    skip: Skip = "concat"
    act: Act = "relu"
    init: Init = "torch"
    norm: Norm = "none"
    upsample: Upsample = "paper"
    deform_output: DeformOutput = "image"

    def __post_init__(self) -> None:
        check_choices(self, "generator option")
        if self.deform_output != "image" and self.skip != "deform":
            raise UserError(
                f"deform_output {self.deform_output} builds on the part warp: use skip deform"
            )


def check_choices(obj: object, what: str) -> None:
    """Refuse a ``Literal`` field of the dataclass ``obj`` whose value is not one of its
    choices: one ``UserError`` naming the field and listing the valid values."""
    hints = get_type_hints(type(obj))
    for f in fields(obj):  # type: ignore[arg-type]
        allowed = get_args(hints[f.name]) if get_origin(hints[f.name]) is Literal else ()
        value = getattr(obj, f.name)
        if allowed and value not in allowed:
            raise UserError(f'{what} {f.name} is "{value}"; expected one of: {", ".join(allowed)}')


_TYPE_WORDS = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    list: "a list",
    dict: "a mapping",
    tuple: "a list",
}


def _fits(value: object, tp: object) -> bool:
    origin = get_origin(tp)
    if origin is Literal:
        return True  # checked by check_choices, with the choices in the message
    if origin in (types.UnionType, Union):
        return any(_fits(value, a) for a in get_args(tp))
    if tp is type(None):
        return value is None
    base = origin or tp
    if base is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok and math.isfinite(value)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, base) if isinstance(base, type) else True


def check_types(obj: object, what: str) -> None:
    """Refuse a field of the dataclass ``obj`` whose value is not of its declared type (a
    number written as text in a hand-edited JSON file, say): one ``UserError`` naming it."""
    hints = get_type_hints(type(obj))
    for f in fields(obj):  # type: ignore[arg-type]
        tp, value = hints[f.name], getattr(obj, f.name)
        if not _fits(value, tp):
            words = [
                _TYPE_WORDS.get(get_origin(a) or a, "null" if a is type(None) else str(a))
                for a in (get_args(tp) if get_origin(tp) in (types.UnionType, Union) else (tp,))
            ]
            raise UserError(f"{what} {f.name} is {value!r}; expected {' or '.join(words)}")


def with_preset(presets: dict[str, dict], name: str, overrides: dict, cls: type, key: str) -> dict:
    """The fields of the dataclass ``cls`` from the preset ``name`` of ``presets`` with
    ``overrides`` on top, and the field ``key`` (when ``cls`` has one) set to ``name``: the one
    preset mechanism of every config.

    ``None`` in ``overrides`` means "not given" and keeps the preset's value. An unknown preset
    or field is a ``UserError`` that lists the valid names.
    """
    if name not in presets:
        raise UserError(f'unknown {key} "{name}"; expected one of: {", ".join(presets)}')
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise UserError(f"unknown options: {', '.join(unknown)}")
    base = {k: v for k, v in presets[name].items() if k in names}
    out = {**base, **{k: v for k, v in overrides.items() if v is not None}}
    return {**out, key: name} if key in names else out


_FROM_EXTRA = ("id_checkpoint_sha256", "lambda_d3")
#: ``name: (test of a value, what the message asks for)`` of numeric training options (``None``
#: always passes: the model's default).
_TRAIN_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    **{
        k: (lambda v: v >= 1, "1 or more")
        for k in (
            "iters1",
            "iters2",
            "batch_size",
            "width",
            "d_width",
            "log_every",
            "sample_every",
            "checkpoint_every",
            "keep_checkpoints",
            "real_per_id",
        )
    },
    "num_scales": (lambda v: 1 <= v <= 3, "1, 2 or 3"),
    "id_fraction": (lambda v: 0 < v <= 1, "a share in (0, 1]"),
    "workers": (lambda v: v >= 0, "0 or more"),
    "lr": (lambda v: v > 0, "a positive number"),
    "lr_decay": (lambda v: 0 <= v <= 1, "0 to 1"),
    "ema": (lambda v: 0 <= v < 1, "0 (none) up to, not including, 1"),
    "beta1": (lambda v: 0 <= v <= 1, "0 to 1"),
    "beta2": (lambda v: 0 <= v <= 1, "0 to 1"),
    "max_seconds": (lambda v: v >= 0, "0 or more seconds"),
    **{
        k: (lambda v: v >= 0, "0 or more")
        for k in (
            "lambda_l1",
            "lambda_adv",
            "lambda_bg",
            "lambda_d1",
            "lambda_d2",
            "lambda_d3",
            "lambda_id",
            "lambda_ssim",
            "lambda_nn",
            "lambda_perceptual",
        )
    },
    "perceptual_layers": (
        lambda v: bool(v) and all(0 <= int(i) <= 18 for i in v),
        "block indices of MobileNetV2's features, 0 to 18",
    ),
    "nn_kernel": (lambda v: v >= 1 and v % 2 == 1, "an odd number of pixels, 1 or more"),
}


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
    #: the last fraction of each stage's iterations (and of ``max_seconds``, when set) over which
    #: the learning rate falls linearly to zero (pix2pix's and Pose-Transfer's schedule); 0 keeps
    #: it constant (both papers)
    lr_decay: float = 0.0
    #: decay of an exponential moving average of the generators' weights, which evaluation and
    #: synthesis then use (Polyak averaging, as in Karras et al.'s progressive GAN); 0: none,
    #: the last weights (both papers)
    ema: float = 0.0
    beta1: float | None = None
    beta2: float | None = None
    heatmap: Literal["pg2", "gaussian"] = "pg2"
    flip: bool = True
    seed: int = 0
    device: str = "auto"
    #: data loader processes; ``None``: 0 on a CPU (a loader process would take a core from
    #: the compute threads, which a CPU step already uses), 1 on CUDA
    workers: int | None = None
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    max_seconds: float | None = None
    channels_last: bool = True
    out: str = "runs"
    # model-specific weights (see each recipe for its defaults)
    lambda_l1: float | None = None
    #: PG2's weight of the adversarial term (1 in eq. 4); 0 trains no D, the generator learns
    #: the pose-mask L1 alone (the control for the adversarial loss)
    lambda_adv: float | None = None
    lambda_bg: float | None = None
    lambda_d1: float | None = None
    lambda_d2: float | None = None
    num_scales: int = 2
    skip: Skip = "concat"
    #: the generators' nonlinearity and initialisation (``relu`` / ``torch``: as before; ``elu``
    #: / ``xavier``: PG2's released TensorFlow code)
    act: Act = "relu"
    init: Init = "torch"
    #: normalisation after every generator conv but the output's (``none``: both papers)
    norm: Norm = "none"
    #: the decoders' upsampling: each paper's (PG2: nearest then 3x3 conv; MsCGAN: transposed
    #: conv) or nearest then a 1x1 conv (PG2's released code)
    upsample: Upsample = "paper"
    #: ``skip="deform"`` only: G1 paints the image, or corrects the part-warped source
    deform_output: DeformOutput = "image"
    preset: str = "paper"
    #: identity loss: weight, and the frozen re-ID checkpoint that embeds the images
    lambda_id: float = 0.0
    id_checkpoint: str | None = None
    #: weight of ``1 - SSIM`` (the posegan protocol's window) of each generated image against
    #: its target, added in every generator stage (0: off, both papers)
    lambda_ssim: float = 0.0
    #: SHA-256 of the identity network's file, recorded so that evaluation can tell when its
    #: idp judge is the network the generator was trained against
    id_checkpoint_sha256: str | None = None
    #: MsCGAN weight of the third discriminator scale (``num_scales 3``)
    lambda_d3: float | None = None
    #: weight of Deformable GAN's nearest-neighbour L1 (each generated pixel against the
    #: closest target pixel in a ``nn_kernel`` square), added in every generator stage (0: off)
    lambda_nn: float = 0.0
    nn_kernel: int = 3
    #: weight of the perceptual L1 on the frozen ImageNet MobileNetV2's ``perceptual_layers``
    #: block outputs, added in every generator stage (0: off)
    lambda_perceptual: float = 0.0
    perceptual_layers: list[int] = field(default_factory=lambda: [1, 3, 6])
    #: a seeded subset of the training set (``Market1501.restrict_train``): this many images
    #: of every identity, and this share of the identities; ``None``: all
    real_per_id: int | None = None
    id_fraction: float | None = None
    subset_seed: int = 0
    #: digest of the training split's image names, so a resume from a moved ``root`` can tell
    #: the same dataset from another one
    train_digest: str | None = None
    #: options changed by resumes: ``{"step", "option", "from", "to"}`` each
    changes: list = field(default_factory=list)

    @property
    def shape(self) -> GeneratorShape:
        """The generators' shape options as one object."""
        return GeneratorShape(
            self.skip, self.act, self.init, self.norm, self.upsample, self.deform_output
        )

    @classmethod
    def from_preset(cls, preset: str = "paper", **overrides) -> TrainConfig:
        """The named preset with ``overrides`` on top (``None`` values are ignored); an
        unknown name lists the valid ones."""
        return cls.from_dict(with_preset(PRESETS, preset, overrides, cls, "preset"))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def __post_init__(self) -> None:
        check_types(self, "training option")
        check_choices(self, "training option")
        for name, (ok, what) in _TRAIN_RANGES.items():
            v = getattr(self, name)
            if v is not None and not ok(v):
                raise UserError(f"training option {name} is {v!r}; expected {what}")
        _ = self.shape  # the generator options are checked together

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        # options files of earlier versions kept these two in a free-form ``extra`` dict
        d.update({k: v for k, v in d.pop("extra", {}).items() if k in _FROM_EXTRA})
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


EvalProtocol = Literal["pg2", "posegan"]
IsProtocol = Literal["is-tf2015", "is-torchvision"]


@dataclass
class EvalConfig:
    """What ``evaluate`` scores and how.

    Exactly one image source: a trained model (``run`` and/or ``checkpoint``) or a folder of
    generated ``images``; or, for ``idp`` alone, only ``shards`` of synthesized training ids.
    ``None`` means the run's value (dataset, root) or the scorer's default.
    """

    run: str | None = None
    checkpoint: str | None = None
    images: str | None = None
    dataset: str | None = None
    root: str | None = None
    protocols: tuple[EvalProtocol, ...] = ("pg2", "posegan")
    metrics: tuple[str, ...] = ("ssim", "mssim")
    limit: int | None = None
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    inception_weights: str | None = None
    is_protocol: IsProtocol = "is-tf2015"
    #: idp: the judge file, or the cpu re-ID recipe's fields to train (and cache) one
    reid_checkpoint: str | None = None
    reid_recipe: dict = field(default_factory=dict)
    #: idp: synthesized training-id shards to classify
    shards: str | None = None
    #: score a run trained with ``--ema`` on its last weights instead of their moving average
    raw_weights: bool = False

    def __post_init__(self) -> None:
        for name in (
            "run",
            "checkpoint",
            "images",
            "root",
            "inception_weights",
            "reid_checkpoint",
            "shards",
        ):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, str(value))
        self.protocols, self.metrics = tuple(self.protocols), tuple(self.metrics)
        self.reid_recipe = {k: v for k, v in self.reid_recipe.items() if v is not None}

    @property
    def has_model(self) -> bool:
        return self.run is not None or self.checkpoint is not None


Strategy = Literal["random", "kmeans", "farthest"]
#: What draws the new-pose images: a trained generator, or the training-free part warp.
SynthesisSource = Literal["generator", "warp"]


@dataclass
class SynthesisConfig:
    """What ``synthesize`` generates and where; validated when constructed.

    Attributes:
        out: the shard folder (created if needed).
        run: a run directory (its latest checkpoint), or give ``checkpoint``.
        poses: target poses per source image.
        strategy: how target poses are drawn from the training pose bank.
        shard_size: images per shard.
        batch_size: images per generator call.
        num_shards, shard_index: split the job across processes (default: torchrun's ranks).
        seed: the job's only random choice (pose sampling); the same seed and checkpoint give
            byte-identical shards (with the same ``command`` and ``SOURCE_DATE_EPOCH``).
        root: the dataset's root when it moved since training (default: the run's); with
            ``dataset``, the root of the people to generate.
        dataset: generate the people of this dataset (at ``root``) with a generator trained on
            another one [default: the run's own dataset and training subset].
        real_per_id, subset_seed: with ``dataset``, synthesize from this seeded subset of its
            training images (``Market1501.restrict_train``), the one a bench will train on.
        source: ``generator`` (the run's) or ``warp``: the training-free part warp of each
            source image into the target pose, with no model (needs ``dataset``); the control
            that shows what a generator adds over moving the person's own pixels.
        command: the command line, stored in each shard.
    """

    out: str
    run: str | None = None
    checkpoint: str | None = None
    poses: int = 10
    strategy: Strategy = "random"
    shard_size: int = 2000
    batch_size: int = 64
    num_shards: int | None = None
    shard_index: int | None = None
    seed: int = 0
    root: str | None = None
    dataset: str | None = None
    real_per_id: int | None = None
    subset_seed: int = 0
    device: str = "auto"
    workers: int = 1
    source: SynthesisSource = "generator"
    command: str = ""

    def __post_init__(self) -> None:
        for name in ("out", "run", "checkpoint", "root"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, str(value))
        check_types(self, "synthesis option")
        check_choices(self, "synthesis option")
        for name, lo in (("poses", 1), ("shard_size", 1), ("batch_size", 1), ("workers", 0),
                         ("num_shards", 1), ("shard_index", 0), ("real_per_id", 1)):  # fmt: skip
            v = getattr(self, name)
            if v is not None and v < lo:
                flag = name.replace("_", "-")
                raise UserError(f"--{flag} must be at least {lo}, got {v}")
        if self.source == "warp":
            if self.run is not None or self.checkpoint is not None:
                raise UserError("--source warp uses no generator: drop --run and --checkpoint")
            if self.dataset is None:
                raise UserError("--source warp needs --dataset and --root: whose people to warp")
        elif self.run is None and self.checkpoint is None:
            raise UserError("synthesize needs --run (or --checkpoint), or --source warp")
        if self.dataset is not None and self.root is None:
            raise UserError(f"--dataset {self.dataset} needs --root: where its people are")
        if self.dataset is None and (self.real_per_id is not None or self.subset_seed != 0):
            raise UserError(
                "--real-per-id and --subset-seed choose images of another --dataset; "
                "without it the run's own training subset is used"
            )
