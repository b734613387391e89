"""Image-quality metrics: SSIM and mask-SSIM (pg2 and posegan protocols), sharpness, IS, mask-IS,
FID and identity preservation (idp), as scorers of one evaluation engine (``registry``)."""

from reidaug.data.pairs import protocol_pairs
from reidaug.metrics.evaluate import METRICS, evaluate
from reidaug.metrics.inception import InceptionScorer, fid, inception_score, tf_inception
from reidaug.metrics.registry import SCORERS, Batch, EvalContext, register_scorer
from reidaug.metrics.ssim import PROTOCOLS, mask_ssim, posegan_mask, protocol_mask, ssim

__all__ = [
    "METRICS",
    "SCORERS",
    "Batch",
    "EvalContext",
    "PROTOCOLS",
    "InceptionScorer",
    "evaluate",
    "fid",
    "inception_score",
    "mask_ssim",
    "posegan_mask",
    "protocol_mask",
    "protocol_pairs",
    "register_scorer",
    "ssim",
    "tf_inception",
]
