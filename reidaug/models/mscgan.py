"""MsCGAN (Tang et al.) networks, sized by the appendix tables (Market-1501, M = 5).

* G1 (Tables 4, 5): CONV1 128, residual blocks 128 -> 256 -> 512 -> 1024 with 3x3 stride-2
  convs, FC 64, FC back to 4096 dims, and a decoder whose blocks end in 3x3 stride-2 deconvs.
* G2 (Tables 6, 7): conv blocks 128 -> 256 -> 512 with 4x4 stride-2 convs, 4x4 deconvs back.
* D1, D2 (Table 8): M-1 = 4 layers of 4x4 stride-2 convs with padding 1 (128, 256, 512, 1024),
  batch norm on all but the first, LeakyReLU, one output value; D_k sees the pair downsampled
  by 2^(k-1).

Channels double (schedule ``table``) rather than grow linearly as in PG2; ``width`` scales all
of them (128 in the paper).
"""

from __future__ import annotations

from torch import nn

from reidaug.config import GeneratorShape
from reidaug.data.keypoints import NUM_KEYPOINTS
from reidaug.models.blocks import DCGANDiscriminator, UNetGenerator

PAPER = GeneratorShape()


def mscgan_g1(
    width: int = 128,
    image_size: tuple[int, int] = (128, 64),
    shape: GeneratorShape = PAPER,
) -> UNetGenerator:
    """G1; with ``skip="add"`` the FC maps back to the deepest level's channels, to add them."""
    fc_channels = max(1, width // 4) if shape.skip == "concat" else None
    return UNetGenerator(
        3 + NUM_KEYPOINTS,
        3,
        width,
        4,
        "table",
        64,
        image_size,
        down_kernel=3,
        up="deconv",
        decoder_reduce=True,
        fc_channels=fc_channels,
        shape=shape,
        source_channels=3 + NUM_KEYPOINTS,
        warp_residual=shape.deform_output == "residual",
    )


def mscgan_g2(
    width: int = 128,
    image_size: tuple[int, int] = (128, 64),
    shape: GeneratorShape = PAPER,
) -> UNetGenerator:
    return UNetGenerator(
        6,
        3,
        width,
        3,
        "table",
        None,
        image_size,
        down_kernel=4,
        up="deconv",
        decoder_reduce=True,
        residual=False,
        zero_out=True,
        shape=shape,
        source_channels=3 + NUM_KEYPOINTS,
    )


def mscgan_d(
    width: int = 128, scale: int = 1, image_size: tuple[int, int] = (128, 64)
) -> DCGANDiscriminator:
    """Discriminator for scale ``scale`` (1 = full resolution, 2 = half, ...)."""
    f = 2 ** (scale - 1)
    return DCGANDiscriminator(6, width, 4, (image_size[0] // f, image_size[1] // f))


def build_mscgan(
    width: int = 128,
    d_width: int = 128,
    num_scales: int = 2,
    image_size: tuple[int, int] = (128, 64),
    shape: GeneratorShape = PAPER,
) -> dict[str, nn.Module]:
    """G1, G2 and one discriminator per scale (``D1``, ``D2``, ...); ``shape`` shapes the
    generators only."""
    nets: dict[str, nn.Module] = {
        "G1": mscgan_g1(width, image_size, shape),
        "G2": mscgan_g2(width, image_size, shape),
    }
    for k in range(1, num_scales + 1):
        nets[f"D{k}"] = mscgan_d(d_width, k, image_size)
    return nets
