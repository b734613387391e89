"""Image-quality metrics."""

from reidaug.metrics.ssim import PROTOCOLS, mask_ssim, posegan_mask, protocol_mask, ssim

__all__ = ["PROTOCOLS", "mask_ssim", "posegan_mask", "protocol_mask", "ssim"]
