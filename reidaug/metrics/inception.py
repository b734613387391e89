"""Inception Score and FID with the 2015-12-05 Inception graph the papers' IS used.

The network is torchvision's ``Inception3`` with 1008 classes, with the four kinds of blocks
whose pooling differs in the TF graph swapped for TF-faithful ones (average pooling that does
not count padding; max pooling in the last block), so a converted weights file
(``pt_inception-2015-12-05-6726825d.pth``) loads key for key. Nothing is downloaded: the file
comes from ``--inception-weights``, ``$REIDAUG_INCEPTION_WEIGHTS`` or the torch hub cache.

``is-torchvision`` is a separate protocol: torchvision's ImageNet weights (1000 classes,
``inception_v3_google-0cc3c7bd.pth``). Its numbers are not comparable with the papers'.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import Inception3, InceptionA, InceptionC, InceptionE

from reidaug.errors import UserError
from reidaug.metrics.registry import REAL, Batch, EvalContext, figure
from reidaug.weights import find, load_state

TF_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
TORCHVISION_WEIGHTS = "inception_v3_google-0cc3c7bd.pth"
IS_PROTOCOLS = {"is-tf2015": TF_WEIGHTS, "is-torchvision": TORCHVISION_WEIGHTS}


def _avg(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _TFInceptionA(InceptionA):
    def _forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), b5, b3, self.branch_pool(_avg(x))]


class _TFInceptionC(InceptionC):
    def _forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            d = layer(d)
        return [self.branch1x1(x), b7, d, self.branch_pool(_avg(x))]


class _TFInceptionE(InceptionE):
    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__(in_channels)
        self.max_pool = max_pool

    def _forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pool = F.max_pool2d(x, 3, 1, 1) if self.max_pool else _avg(x)
        return [self.branch1x1(x), b3, d, self.branch_pool(pool)]


def tf_inception() -> Inception3:
    """An untrained Inception3 laid out as the TF 2015-12-05 graph (1008 classes)."""
    net = Inception3(num_classes=1008, aux_logits=False, init_weights=False, transform_input=False)
    net.Mixed_5b = _TFInceptionA(192, pool_features=32)
    net.Mixed_5c = _TFInceptionA(256, pool_features=64)
    net.Mixed_5d = _TFInceptionA(288, pool_features=64)
    net.Mixed_6b = _TFInceptionC(768, channels_7x7=128)
    net.Mixed_6c = _TFInceptionC(768, channels_7x7=160)
    net.Mixed_6d = _TFInceptionC(768, channels_7x7=160)
    net.Mixed_6e = _TFInceptionC(768, channels_7x7=192)
    net.Mixed_7b = _TFInceptionE(1280, max_pool=False)
    net.Mixed_7c = _TFInceptionE(2048, max_pool=True)
    return net


def find_weights(protocol: str = "is-tf2015", path: str | os.PathLike | None = None) -> Path:
    """Locate the weights file: ``path``, ``$REIDAUG_INCEPTION_WEIGHTS``, or the hub cache."""
    if protocol not in IS_PROTOCOLS:
        raise UserError(
            f'unknown IS protocol "{protocol}"; expected one of: {", ".join(IS_PROTOCOLS)}'
        )
    return find(
        "Inception",
        IS_PROTOCOLS[protocol],
        path,
        "--inception-weights",
        "REIDAUG_INCEPTION_WEIGHTS",
    )


class InceptionScorer(nn.Module):
    """Class probabilities and 2048-d pool features of ``uint8`` images.

    Args:
        protocol: ``is-tf2015`` (1008 classes, inputs scaled to [-1, 1] as the TF graph) or
            ``is-torchvision`` (1000 classes, ImageNet normalisation).
        weights: a weights file, or ``None`` to search the usual places.
        state_dict: weights already in memory (tests use random ones).
    """

    def __init__(
        self,
        protocol: str = "is-tf2015",
        weights: str | os.PathLike | None = None,
        state_dict: dict | None = None,
    ) -> None:
        super().__init__()
        self.protocol = protocol
        if protocol == "is-tf2015":
            self.net = tf_inception()
        else:
            self.net = Inception3(
                num_classes=1000, aux_logits=False, init_weights=False, transform_input=False
            )
        if state_dict is None:
            state_dict = load_state(find_weights(protocol, weights), "Inception")
        missing, unexpected = self.net.load_state_dict(state_dict, strict=False)
        missing = [k for k in missing if not k.startswith("AuxLogits")]
        if missing or unexpected:
            raise UserError(
                f"Inception weights do not fit {protocol}: {len(missing)} missing and "
                f"{len(unexpected)} unexpected keys (e.g. {(missing or unexpected)[0]})"
            )
        self.net.eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``uint8 (B, H, W, 3)`` -> ``(probabilities (B, C), pool features (B, 2048))``."""
        x = images.permute(0, 3, 1, 2).float().div(255.0)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        if self.protocol == "is-tf2015":
            x = x * 2 - 1
        else:
            mean = torch.tensor([0.485, 0.456, 0.406], device=x.device).view(1, 3, 1, 1)
            std = torch.tensor([0.229, 0.224, 0.225], device=x.device).view(1, 3, 1, 1)
            x = (x - mean) / std
        n = self.net
        for name in (
            "Conv2d_1a_3x3",
            "Conv2d_2a_3x3",
            "Conv2d_2b_3x3",
            "maxpool1",
            "Conv2d_3b_1x1",
            "Conv2d_4a_3x3",
            "maxpool2",
            "Mixed_5b",
            "Mixed_5c",
            "Mixed_5d",
            "Mixed_6a",
            "Mixed_6b",
            "Mixed_6c",
            "Mixed_6d",
            "Mixed_6e",
            "Mixed_7a",
            "Mixed_7b",
            "Mixed_7c",
        ):
            x = getattr(n, name)(x)
        pool = n.avgpool(x).flatten(1)
        return F.softmax(n.fc(pool), dim=1), pool


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """IS = exp(E_x[KL(p(y|x) || p(y))]) per split; returns mean and std over the splits."""
    probs = np.asarray(probs, dtype=np.float64)
    scores = []
    for part in np.array_split(probs, splits):
        if len(part) == 0:
            continue
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(axis=1).mean()
        scores.append(float(np.exp(kl)))
    return float(np.mean(scores)), float(np.std(scores))


def fid_is_rank_deficient(n: int, dim: int) -> bool:
    """Whether ``n`` feature vectors of ``dim`` dimensions give singular covariances (n <= dim)."""
    return n <= dim


def fid(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    With no more images than feature dimensions the covariances are singular: scipy's warning
    about it is silenced here, and the caller says so once (``InceptionMetrics.records``)."""
    from scipy import linalg

    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise UserError("FID needs at least 2 images on each side")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        if fid_is_rank_deficient(min(len(a), len(b)), a.shape[1]):
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)  # the matrix alone (scipy deprecates disp=False)
        if not np.isfinite(covmean).all():
            eps = np.eye(len(s1)) * 1e-6
            covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@dataclass
class Accumulator:
    """Collects probabilities and features of a stream of image batches."""

    scorer: InceptionScorer
    device: torch.device

    def __post_init__(self) -> None:
        self.probs: list[np.ndarray] = []
        self.feats: list[np.ndarray] = []

    def add(self, images_uint8: np.ndarray) -> None:
        p, f = self.scorer(torch.from_numpy(np.ascontiguousarray(images_uint8)).to(self.device))
        self.probs.append(p.cpu().numpy())
        self.feats.append(f.cpu().numpy())

    def score(self, splits: int = 10) -> tuple[float, float]:
        return inception_score(np.concatenate(self.probs), splits)

    def features(self) -> np.ndarray:
        return np.concatenate(self.feats)


class InceptionMetrics:
    """``is``, ``mis`` (IS of the masked images) and ``fid`` (against the real targets) of
    every source, with one Inception network for all three: their factories return the one
    object of the evaluation (``inception_metrics``), which scores only the names asked for."""

    def __init__(self, ctx: EvalContext) -> None:
        cfg = ctx.cfg
        self.wanted = {"is", "mis", "fid"} & set(cfg.metrics)
        self.label = cfg.is_protocol
        self.device = ctx.device
        state = ctx.overrides.get("inception_state_dict")
        self.net = InceptionScorer(cfg.is_protocol, cfg.inception_weights, state).to(ctx.device)
        self.log = ctx.log
        self.protocol, self.accs = "", {}

    def start(self, protocol: str) -> None:
        self.protocol, self.accs = protocol, {}

    def _acc(self, key: tuple[str, str]) -> Accumulator:
        return self.accs.setdefault(key, Accumulator(self.net, self.device))

    def add(self, batch: Batch) -> None:
        for src, imgs in batch.images.items():
            self._acc(("is", src)).add(imgs)  # FID needs the features even without IS
            if "mis" in self.wanted:
                self._acc(("mis", src)).add(batch.masked[src])

    def records(self) -> list[dict]:
        proto, out = f"{self.protocol}/{self.label}", []
        for (metric, src), acc in self.accs.items():
            if metric in self.wanted:
                m, s = acc.score()
                out.append(figure(metric, proto, src, m, len(acc.features()), s))
        if "fid" in self.wanted:
            real = self.accs[("is", REAL)].features()
            if fid_is_rank_deficient(*real.shape):
                self.log(
                    f"warning: FID on {len(real)} pairs, no more than the {real.shape[1]} feature "
                    "dimensions: the covariances are singular and FID depends on the count; "
                    "compare "
                    "FIDs only at equal counts (Heusel et al. recommend at least 10,000 images)"
                )
            for (metric, src), acc in self.accs.items():
                if metric == "is" and src != REAL:
                    out.append(figure("fid", proto, src, fid(acc.features(), real), len(real)))
        return out

    def finish(self) -> list[dict]:
        return []


def inception_metrics(ctx: EvalContext) -> InceptionMetrics:
    """The evaluation's one :class:`InceptionMetrics` (built on first use)."""
    if "inception" not in ctx.shared:
        ctx.shared["inception"] = InceptionMetrics(ctx)
    return ctx.shared["inception"]
