"""Sharpness inside the pose mask, with nothing to download.

Two per-image statistics on the luminance in [0, 1], both restricted to the pose mask:

- ``lapvar``: the variance of the Laplacian (scikit-image's ``laplace``, 3x3 kernel);
- ``hfe``: high-frequency energy, the mean squared value of the image high-passed in the
  Fourier domain, keeping spatial frequencies above :data:`HF_CUTOFF` cycles per pixel
  (the Nyquist limit is 0.5), i.e. roughly detail finer than four pixels.

``evaluate`` reports each as a ratio of the mean over generated images to the mean over the real
targets of the same pairs, so 1.0 is "as sharp as the real photographs". A blurry generator
scores far below 1. The filter runs on the whole image and only the statistic is masked, so the
mask's own edges add nothing.

What they cannot tell: sharp is not the same as right. Noise, JPEG ringing or a texture pasted
from the wrong person raise both ratios, and a ratio above 1 is as wrong as one below. Read them
next to SSIM (structure) and idp (identity), never alone.
"""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2gray
from skimage.filters import laplace

from reidaug.metrics.registry import REAL, Batch, figure

HF_CUTOFF = 0.25
SHARPNESS_METRICS = ("lapvar", "hfe")


def _gray(img: np.ndarray) -> np.ndarray:
    return rgb2gray(np.asarray(img)) if np.asarray(img).ndim == 3 else np.asarray(img) / 255.0


def _mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    m = np.ones(shape[:2], bool) if mask is None else np.asarray(mask) > 0
    if not m.any():  # an all-missing pose: fall back to the whole image
        m = np.ones(shape[:2], bool)
    return m


def laplacian_variance(img: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of ``img`` (``uint8 (H, W, 3)``) over ``mask`` (or all)."""
    g = _gray(img)
    return float(laplace(g, ksize=3)[_mask(mask, g.shape)].var())


def high_frequency_energy(
    img: np.ndarray, mask: np.ndarray | None = None, cutoff: float = HF_CUTOFF
) -> float:
    """Mean squared high-passed luminance over ``mask``; frequencies above ``cutoff`` (cycles
    per pixel, radial) are kept."""
    g = _gray(img)
    fy = np.fft.fftfreq(g.shape[0])[:, None]
    fx = np.fft.fftfreq(g.shape[1])[None, :]
    keep = np.hypot(fy, fx) > cutoff
    hp = np.fft.ifft2(np.fft.fft2(g) * keep).real
    return float(np.mean(hp[_mask(mask, g.shape)] ** 2))


def sharpness(img: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Both statistics of one image: ``{"lapvar": ..., "hfe": ...}``."""
    return {"lapvar": laplacian_variance(img, mask), "hfe": high_frequency_energy(img, mask)}


class SharpnessScorer:
    """``lapvar`` and ``hfe`` inside the target's evaluation mask, each source's mean as a ratio
    to the real targets' mean (records keep the raw mean as ``raw``)."""

    def __init__(self) -> None:
        self.protocol, self.values = "", {}

    def start(self, protocol: str) -> None:
        self.protocol, self.values = protocol, {}

    def add(self, batch: Batch) -> None:
        for src, imgs in batch.images.items():
            for im, m in zip(imgs, batch.masks, strict=True):
                for k, v in sharpness(im, m).items():
                    self.values.setdefault((k, src), []).append(v)

    def records(self) -> list[dict]:
        out = []
        for (metric, src), vals in self.values.items():
            ref, raw = float(np.mean(self.values[(metric, REAL)])), float(np.mean(vals))
            # the ratio of means (not the mean of ratios), so the real target's is exactly 1
            out.append(
                figure(
                    metric,
                    self.protocol,
                    src,
                    raw / ref,
                    len(vals),
                    float(np.std(vals)) / ref,
                    raw=raw,
                )
            )
        return out

    def finish(self) -> list[dict]:
        return []
