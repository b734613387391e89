"""SSIM and mask-SSIM under the two protocols of the literature, via scikit-image.

* ``pg2``: default 7x7 uniform window, sample covariance, ``data_range=255``; the mask is the
  PG2 pose mask of the target, applied as ``uint8(mask * image)`` to both images.
* ``posegan`` (Deformable GAN, Pose-Transfer, XingGAN): ``gaussian_weights=True``,
  ``sigma=1.5``, ``use_sample_covariance=False``,
  ``data_range = generated.max() - generated.min()``;
  the mask is limb polygons of half-width 4 plus joint disks of radius 4, then a 5x5 dilation
  and erosion.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from skimage.draw import disk, polygon
from skimage.metrics import structural_similarity
from skimage.morphology import dilation, erosion

from reidaug.data.keypoints import LIMBS, present
from reidaug.data.pose import apply_mask, pose_mask
from reidaug.metrics.registry import Batch, record

Protocol = Literal["pg2", "posegan"]
PROTOCOLS: tuple[str, ...] = ("pg2", "posegan")


def ssim(
    pred: np.ndarray, target: np.ndarray, protocol: Protocol = "pg2", fixed_range: bool = False
) -> float:
    """SSIM of two ``uint8 (H, W, 3)`` images under ``protocol``.

    ``fixed_range``: posegan's window with ``data_range=255`` instead of the generated image's
    own range, which raises the SSIM of an image whose range is wider (the ``ssim-fixed``
    metric; under ``pg2``, whose range is already 255, the same as ``ssim``).
    """
    if protocol == "pg2":
        return float(structural_similarity(pred, target, channel_axis=-1, data_range=255))
    if protocol == "posegan":
        rng = 255.0 if fixed_range else float(pred.max()) - float(pred.min())
        return float(
            structural_similarity(
                pred,
                target,
                channel_axis=-1,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=rng if rng > 0 else 255.0,
            )
        )
    raise ValueError(f'unknown protocol "{protocol}"; expected one of: {", ".join(PROTOCOLS)}')


def posegan_mask(
    kps: np.ndarray, height: int = 128, width: int = 64, radius: int = 4
) -> np.ndarray:
    """The pose-gan evaluation mask: limb polygons of half-width ``radius`` and joint disks of
    ``radius`` (scikit-image rasterisation, as the reference), then a 5x5 dilation and erosion."""
    mask = np.zeros((height, width), dtype=bool)
    ok = present(kps)
    pts = kps.astype(np.float64)
    for a, b in LIMBS:
        if not (ok[a] and ok[b]):
            continue
        d = pts[a] - pts[b]
        norm = np.hypot(*d)
        if norm == 0:
            continue
        n = radius * np.array([-d[1], d[0]]) / norm
        v = np.array([pts[a] + n, pts[a] - n, pts[b] - n, pts[b] + n])
        rr, cc = polygon(v[:, 0], v[:, 1], shape=mask.shape)
        mask[rr, cc] = True
    for y, x in pts[ok]:
        rr, cc = disk((y, x), radius, shape=mask.shape)
        mask[rr, cc] = True
    sq = np.ones((5, 5), dtype=bool)
    return erosion(dilation(mask, sq), sq).astype(np.float32)


def protocol_mask(
    kps: np.ndarray, protocol: Protocol, height: int = 128, width: int = 64
) -> np.ndarray:
    """The evaluation mask of ``protocol`` for target keypoints ``kps``."""
    return pose_mask(kps, height, width) if protocol == "pg2" else posegan_mask(kps, height, width)


def mask_ssim(
    pred: np.ndarray,
    target: np.ndarray,
    kps: np.ndarray | None = None,
    protocol: Protocol = "pg2",
    mask: np.ndarray | None = None,
) -> float:
    """SSIM of the two images with everything outside the target's pose mask set to 0.

    Args:
        kps: the target's keypoints, from which the protocol's mask is drawn;
        mask: or that mask already drawn (``protocol_mask(kps, protocol)``).
    """
    if mask is None:
        if kps is None:
            raise ValueError("mask_ssim needs the target's keypoints or its mask")
        mask = protocol_mask(kps, protocol, *target.shape[:2])
    return ssim(apply_mask(pred, mask), apply_mask(target, mask), protocol)


class SsimScorer:
    """``ssim`` (whole images), ``ssim-fixed`` (whole images, a fixed data range of 255) or
    ``mssim`` (inside the target's evaluation mask) of every source against the real target,
    under the batch's protocol."""

    def __init__(self, masked: bool, fixed_range: bool = False) -> None:
        self.name = "mssim" if masked else "ssim-fixed" if fixed_range else "ssim"
        self.masked, self.fixed, self.protocol, self.values = masked, fixed_range, "", {}

    def start(self, protocol: str) -> None:
        self.protocol, self.values = protocol, {}

    def add(self, batch: Batch) -> None:
        p, t = batch.protocol, batch.target
        for src, imgs in batch.images.items():
            vals = self.values.setdefault(src, [])
            if self.masked:
                vals += [
                    mask_ssim(a, b, protocol=p, mask=m)
                    for a, b, m in zip(imgs, t, batch.masks, strict=True)
                ]
            else:
                vals += [ssim(a, b, p, self.fixed) for a, b in zip(imgs, t, strict=True)]

    def records(self) -> list[dict]:
        return [record(self.name, self.protocol, s, v) for s, v in self.values.items()]

    def finish(self) -> list[dict]:
        return []
