"""``fd-mnv2``: the Fréchet distance of ImageNet MobileNetV2 features, generated against real.

Not Inception FID, and not comparable with it: the network is the ImageNet MobileNetV2 that
reidaug finds offline (:func:`~reidaug.reidnet.backbone.find_weights`), fed the images at
their own 128x64 size with ImageNet normalisation, and the features are its globally averaged
last block (1,280 dimensions). Lower is closer to the real targets; the copy baseline, the warp
and the real target itself are scored as reference rows.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reidaug.metrics.inception import fid, fid_is_rank_deficient
from reidaug.metrics.registry import REAL, Batch, EvalContext, figure
from reidaug.reidnet import backbone


class MobileNetFeatures(nn.Module):
    """Frozen ImageNet MobileNetV2 features of ``uint8 (N, H, W, 3)`` images."""

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        self.features, self.weights = backbone.imagenet_mobilenet_v2(weights)
        self.register_buffer("mean", torch.tensor(backbone.IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(backbone.IMAGENET_STD).view(1, 3, 1, 1) * 255)
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.permute(0, 3, 1, 2).float() - self.mean) / self.std
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)


class FdMnv2Scorer:
    """Per protocol, ``fd-mnv2`` of every source against the real targets."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.net = MobileNetFeatures().to(ctx.device)
        ctx.log(f"fd-mnv2: ImageNet MobileNetV2 features from {self.net.weights}")
        self.protocol, self.feats = "", {}

    def start(self, protocol: str) -> None:
        self.protocol, self.feats = protocol, {}

    def add(self, batch: Batch) -> None:
        for src, imgs in batch.images.items():
            x = torch.from_numpy(np.ascontiguousarray(imgs)).to(self.ctx.device)
            self.feats.setdefault(src, []).append(self.net(x).cpu().numpy())

    def records(self) -> list[dict]:
        feats = {s: np.concatenate(f) for s, f in self.feats.items()}
        real = feats[REAL]
        if fid_is_rank_deficient(*real.shape):
            self.ctx.log(
                f"warning: fd-mnv2 on {len(real)} pairs, no more than the {real.shape[1]} feature "
                "dimensions: compare fd-mnv2 only at equal counts"
            )
        # the real target against a disjoint half of itself: the floor a source can reach
        half = len(real) // 2
        out = [figure("fd-mnv2", self.protocol, src, fid(f, real), len(f))
               for src, f in feats.items() if src != REAL]  # fmt: skip
        if half >= 2:
            out.append(
                figure(
                    "fd-mnv2",
                    self.protocol,
                    f"{REAL} (half vs half)",
                    fid(real[:half], real[half:]),
                    half,
                )  # fmt: skip
            )
        return out

    def finish(self) -> list[dict]:
        return []
