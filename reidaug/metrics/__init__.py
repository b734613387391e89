"""Image-quality metrics: SSIM and mask-SSIM (pg2 and posegan protocols), IS, mask-IS, FID."""

from reidaug.metrics.evaluate import METRICS, evaluate, protocol_pairs
from reidaug.metrics.inception import InceptionScorer, fid, inception_score, tf_inception
from reidaug.metrics.ssim import PROTOCOLS, mask_ssim, posegan_mask, protocol_mask, ssim

__all__ = [
    "METRICS",
    "PROTOCOLS",
    "InceptionScorer",
    "evaluate",
    "fid",
    "inception_score",
    "mask_ssim",
    "posegan_mask",
    "protocol_mask",
    "protocol_pairs",
    "ssim",
    "tf_inception",
]
