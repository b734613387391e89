"""Losses of PG2 and MsCGAN."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    return (pred - target).abs().mean()


def pose_mask_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PG2 eq. 1: ``||(G(x) - I_B) * (1 + M_B)||_1`` (mean over pixels); the body counts twice."""
    return ((pred - target) * (1.0 + mask)).abs().mean()


def background_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MsCGAN's masked term ``||(y - G(x, p)) * p_m||_1`` (mean over pixels)."""
    return ((target - pred) * mask).abs().mean()


def nearest_neighbour_l1(pred: torch.Tensor, target: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Deformable GAN's nearest-neighbour loss in pixel space: each generated pixel's L1
    distance (summed over channels) to the closest target pixel in its ``k x k``
    neighbourhood, the mean over images and pixels; tolerates misalignment of ``k // 2``
    pixels. The target's border is replicated, so an edge pixel has a full neighbourhood.
    """
    if k < 1 or k % 2 == 0:
        raise ValueError(f"the nearest-neighbour window must be odd and at least 1, got {k}")
    b, c, h, w = target.shape
    r = k // 2
    padded = F.pad(target.float(), (r, r, r, r), mode="replicate")
    patches = F.unfold(padded, k).view(b, c, k * k, h * w)
    dist = (pred.float().reshape(b, c, 1, h * w) - patches).abs().sum(1)
    return dist.amin(1).mean()


class PerceptualL1(nn.Module):
    """L1 between the frozen ImageNet MobileNetV2's block outputs of generated and target
    images (PATN's perceptual loss, on the network that exists here instead of VGG19): the
    mean over ``layers`` (indices of ``features``; at 128x64, 1 is 64x32, 3 is 32x16, 6 is
    16x8) of each block's mean absolute difference. Images come in [-1, 1] and are given
    ImageNet's normalisation; the network stays in eval mode and learns nothing.

    Args:
        layers: block indices of torchvision's ``mobilenet_v2().features``.
        weights: the ImageNet file (default: found offline, as the re-ID backbone's).
    """

    def __init__(self, layers=(1, 3, 6), weights: str | None = None) -> None:
        super().__init__()
        from reidaug.reidnet import backbone

        layers = sorted(set(int(i) for i in layers))
        if not layers or layers[0] < 0 or layers[-1] > 18:
            raise ValueError(f"perceptual layers must lie in 0..18, got {layers}")
        feats, _ = backbone.imagenet_mobilenet_v2(weights)
        self.blocks = feats[: layers[-1] + 1]
        self.layers = set(layers)
        self.register_buffer("mean", torch.tensor(backbone.IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(backbone.IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> PerceptualL1:
        return super().train(False)  # frozen batch-norm statistics, whatever the caller says

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x.float() + 1) / 2 - self.mean) / self.std
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.layers:
                out.append(x)
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            want = self.features(target)
        got = self.features(pred)
        return sum((a - b).abs().mean() for a, b in zip(got, want, strict=True)) / len(got)


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """``1 - SSIM`` of two image batches in [-1, 1], the mean over images, channels and pixels.

    The SSIM is the posegan protocol's (scikit-image's ``gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False``: an 11x11 Gaussian window truncated at 3.5 sigma, the border
    where it does not fit left out) with the data range fixed at 2; the training-time form of
    the measure, as in Zhao et al. 2017 ("Loss functions for image restoration with neural
    networks"), who train with it beside L1.
    """
    radius = int(3.5 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=pred.device)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    g = g / g.sum()
    pred, target = pred.float(), target.float()
    c = pred.shape[1]
    maps = torch.cat([pred, target, pred * pred, target * target, pred * target], 1)
    n = maps.shape[1]
    maps = F.conv2d(maps, g.view(1, 1, -1, 1).expand(n, 1, -1, 1), groups=n)
    maps = F.conv2d(maps, g.view(1, 1, 1, -1).expand(n, 1, 1, -1), groups=n)
    mx, my, xx, yy, xy = maps.split(c, 1)
    vx, vy, cov = xx - mx * mx, yy - my * my, xy - mx * my
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return 1.0 - s.mean()


class GANLoss(nn.Module):
    """Adversarial loss on logits that hides the label tensors.

    ``mode="bce"``: binary cross-entropy on logits; the generator side is non-saturating
    (``gan(d_fake, True)`` maximises ``log D(G(x))``). ``mode="lsgan"``: least squares.
    """

    def __init__(self, mode: Literal["bce", "lsgan"] = "bce") -> None:
        super().__init__()
        if mode not in ("bce", "lsgan"):
            raise ValueError(f'unknown GAN loss "{mode}"; expected one of: bce, lsgan')
        self.mode = mode

    def forward(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        logits = logits.float()
        target = torch.full_like(logits, 1.0 if real else 0.0)
        if self.mode == "bce":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)


def d_loss(gan: GANLoss, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """PG2 eq. 2: ``L_bce(D(I_A, I_B), 1) + L_bce(D(I_A, I_B2), 0)``."""
    return gan(d_real, True) + gan(d_fake, False)


def pg2_g2_loss(
    gan: GANLoss,
    d_fake: torch.Tensor,
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    lam: float = 10.0,
    adv: float = 1.0,
) -> torch.Tensor:
    """PG2 eq. 4: ``adv`` times the adversarial loss plus ``lam`` times the pose-mask L1."""
    return adv * gan(d_fake, True) + lam * pose_mask_l1(pred, target, mask)
