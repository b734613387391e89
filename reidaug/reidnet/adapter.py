"""The one module that imports torchreid, and hides its quirks.

torchreid on the registry is 0.2.5, a repackaging of deep-person-reid 1.4.0: its modules live
under ``torchreid.reid.*``; models must be built with ``pretrained=False`` (the default
downloads); ImageNet weights are loaded here from a local file under torch's ``weights_only``
default; its Cython ranking is not compiled, so evaluation falls back to pure Python.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reidaug.errors import UserError
from reidaug.names import OPTIMIZERS, SCHEDULERS, TRANSFORMS
from reidaug.reidnet import backbone


def _tr():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Cython evaluation is unavailable" and friends
        import torchreid.reid as tr
    return tr


def model_names() -> list[str]:
    """Every re-ID model name: torchreid's and reidaug's own (:mod:`~reidaug.reidnet.backbone`)."""
    models = _tr().models  # imported under the adapter's warning filter
    return sorted([*vars(models)["__model_factory"], *backbone.OWN_MODELS])


def check_model(name: str) -> None:
    """Raise a ``UserError`` listing the valid names when torchreid has no model ``name``."""
    names = model_names()
    if name not in names:
        raise UserError(f'Unknown re-ID model "{name}"; expected one of: {", ".join(names)}')


def build_model(
    name: str, num_classes: int, pretrained: str | os.PathLike | None = None
) -> nn.Module:
    """A re-ID model trained from scratch, or from local ImageNet weights.

    Args:
        name: a torchreid model name (``osnet_x0_25``, ``resnet50`` ...) or one of reidaug's
            own (``mobilenetv2_bnneck``).
        num_classes: training identities.
        pretrained: an ImageNet weights file, or ``"imagenet"`` to find one
            (:func:`~reidaug.reidnet.backbone.find_weights`); nothing is downloaded.
    """
    check_model(name)
    if name in backbone.OWN_MODELS:
        model = backbone.build_own(name, num_classes)
    else:
        model = _tr().models.build_model(
            name, num_classes, loss="softmax", pretrained=False, use_gpu=False
        )
    if pretrained is not None:
        path = backbone_weights(name, pretrained)
        backbone.load_pretrained(model, name, path)
    return model


def backbone_weights(name: str, pretrained: str | os.PathLike) -> Path:
    """The weights file that ``pretrained`` (a path, or ``"imagenet"``) means for ``name``."""
    return backbone.find_weights(name, None if str(pretrained) == "imagenet" else pretrained)


def new_layers(model: nn.Module) -> list[str]:
    """The layers a pretrained model learns from scratch (its head), by child name."""
    names = {n for n, _ in model.named_children()}
    return [n for n in backbone.NEW_LAYERS if n in names]


def transforms(height: int, width: int, names: Sequence[str] = ("random_flip",)):
    """torchreid's train and test transforms: PIL image -> normalised tensor.

    Args:
        names: training transforms, any of :data:`TRANSFORMS` (the test transform never
            augments).
    """
    bad = [n for n in names if n not in TRANSFORMS]
    if bad:
        raise UserError(f'unknown transform "{bad[0]}"; expected some of: {", ".join(TRANSFORMS)}')
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its transform list
        return _tr().data.transforms.build_transforms(height, width, transforms=list(names))


def read_image(path: str | os.PathLike):
    """torchreid's image reader (what its datasets use): a PIL RGB image."""
    return _tr().utils.read_image(str(path))


def cross_entropy(num_classes: int, label_smooth: bool = True) -> nn.Module:
    """torchreid's label-smoothed cross-entropy (its standard softmax recipe)."""
    return _tr().losses.CrossEntropyLoss(num_classes, use_gpu=False, label_smooth=label_smooth)


def check_choice(what: str, name: str, choices: Sequence[str]) -> None:
    """A ``UserError`` listing ``choices`` when ``name`` is not one of them."""
    if name not in choices:
        raise UserError(f'unknown {what} "{name}"; expected one of: {", ".join(choices)}')


def optimizer(
    model: nn.Module,
    name: str = "adam",
    lr: float = 3e-4,
    weight_decay: float = 5e-4,
    base_lr_mult: float = 1.0,
):
    """torchreid's ``build_optimizer`` (``amsgrad`` is Adam with the AMSGrad correction);
    with ``base_lr_mult != 1`` the backbone learns at ``lr * base_lr_mult`` and the head
    (:func:`new_layers`) at ``lr`` (torchreid's ``staged_lr``)."""
    check_choice("optimizer", name, OPTIMIZERS)
    staged = {}
    if base_lr_mult != 1.0:
        staged = {"staged_lr": True, "new_layers": new_layers(model), "base_lr_mult": base_lr_mult}
    return _tr().optim.build_optimizer(
        model, optim=name, lr=lr, weight_decay=weight_decay, **staged
    )


def scheduler(opt, name: str = "single_step", stepsize: Sequence[int] = (20,), max_epoch: int = 1):
    """torchreid's ``build_lr_scheduler``, stepped once per epoch; ``cosine`` anneals over
    ``max_epoch`` epochs."""
    check_choice("scheduler", name, SCHEDULERS)
    step: int | list[int] = list(stepsize) if name == "multi_step" else int(stepsize[0])
    return _tr().optim.build_lr_scheduler(
        opt, lr_scheduler=name, stepsize=step, max_epoch=max_epoch
    )


def train_only(model: nn.Module, layers: Sequence[str] | None) -> None:
    """Train only ``layers`` (torchreid's ``open_specified_layers``), or every layer with ``None``
    (``open_all_layers``): the ``fixbase`` warm-up of a pretrained backbone."""
    utils = _tr().utils
    if layers is None:
        utils.open_all_layers(model)
    else:
        utils.open_specified_layers(model, list(layers))


def distance(qf: torch.Tensor, gf: torch.Tensor) -> np.ndarray:
    """torchreid's Euclidean distance matrix ``(queries, gallery)`` as a numpy array."""
    return _tr().metrics.compute_distance_matrix(qf, gf, "euclidean").numpy()


def evaluate(
    qf: torch.Tensor, gf: torch.Tensor, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50
) -> tuple[np.ndarray, float]:
    """torchreid's ranking evaluation (same-camera same-id gallery entries are ignored).

    Returns:
        ``(cmc, mAP)`` with ``cmc[k-1]`` = Rank-k.
    """
    tr = _tr()
    dist = distance(qf, gf)
    # torchreid's ranking needs every query's gallery, less its same-camera matches, to hold
    # max_rank entries (a small gallery, such as a validation split's, may not)
    same: dict[tuple[int, int], int] = {}
    for p, c in zip(g_pids, g_camids, strict=True):
        same[(int(p), int(c))] = same.get((int(p), int(c)), 0) + 1
    dropped = max((same.get((int(p), int(c)), 0) for p, c in zip(q_pids, q_camids, strict=True)),
                  default=0)  # fmt: skip
    max_rank = max(1, min(max_rank, len(g_pids) - dropped))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints when the gallery is small
        cmc, mAP = tr.metrics.evaluate_rank(
            dist,
            np.asarray(q_pids),
            np.asarray(g_pids),
            np.asarray(q_camids),
            np.asarray(g_camids),
            max_rank=max_rank,
        )
    return np.asarray(cmc), float(mAP)


Sample = tuple[str, int, int]


def register_dataset(
    name: str, train: Sequence[Sample], query: Sequence[Sample], gallery: Sequence[Sample]
) -> None:
    """Register ``(image path, pid, camid)`` lists as torchreid image dataset ``name``, so that
    torchreid's own ``ImageDataManager(sources=name)`` and ``Engine`` train on them.

    Training pids must be ``0..N-1`` and cameras 0-based (torchreid's convention); the
    ``root`` torchreid passes is ignored, since the paths are absolute.
    """
    tr = _tr()
    lists = (list(train), list(query), list(gallery))

    class _Registered(tr.data.ImageDataset):
        def __init__(self, root: str = "", **kwargs) -> None:
            super().__init__(*lists, **kwargs)

    _Registered.__name__ = f"Registered_{name}"
    tr.data.register_image_dataset(name, _Registered)
