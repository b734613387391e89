"""PG2 (Ma et al., NIPS 2017) networks at paper size by default."""

from __future__ import annotations

from torch import nn

from reidaug.config import GeneratorShape
from reidaug.data.keypoints import NUM_KEYPOINTS
from reidaug.models.blocks import DCGANDiscriminator, UNetGenerator

PAPER = GeneratorShape()


def pg2_g1(
    width: int = 128,
    num_blocks: int = 5,
    image_size: tuple[int, int] = (128, 64),
    shape: GeneratorShape = PAPER,
) -> UNetGenerator:
    """G1: residual U-Net with a 64-unit FC bottleneck; input = image + 18 heatmaps (21 ch)."""
    return UNetGenerator(
        3 + NUM_KEYPOINTS,
        3,
        width,
        num_blocks,
        "linear",
        64,
        image_size,
        shape=shape,
        source_channels=3 + NUM_KEYPOINTS,
        warp_residual=shape.deform_output == "residual",
    )


def pg2_g2(
    width: int = 128,
    num_blocks: int = 3,
    image_size: tuple[int, int] = (128, 64),
    shape: GeneratorShape = PAPER,
) -> UNetGenerator:
    """G2: the same U-Net without FC and with N-2 blocks; input = condition + G1 output (6 ch).

    It predicts a difference map; the refined image is ``G1 output + G2 output``. The output
    conv starts at zero, so training starts from G1's image (the paper leaves init open).
    """
    return UNetGenerator(
        6,
        3,
        width,
        num_blocks,
        "linear",
        None,
        image_size,
        zero_out=True,
        shape=shape,
        source_channels=3 + NUM_KEYPOINTS,
    )


def pg2_d(width: int = 64, image_size: tuple[int, int] = (128, 64)) -> DCGANDiscriminator:
    """D: DCGAN discriminator over (condition, image) pairs (6 ch), 4 stride-2 convs at 128x64."""
    return DCGANDiscriminator(6, width, 4, image_size)


def build_pg2(
    width: int = 128,
    d_width: int = 64,
    variant: str = "full",
    image_size: tuple[int, int] = (128, 64),
    num_blocks: int = 5,
    shape: GeneratorShape = PAPER,
) -> dict[str, nn.Module]:
    """PG2's networks for a variant: G1 alone, G1+D (``g1-d``) or G1+G2+D (``full``).

    ``shape`` shapes the generators only (D keeps DCGAN's LeakyReLU and batch norm).
    """
    nets: dict[str, nn.Module] = {"G1": pg2_g1(width, num_blocks, image_size, shape)}
    if variant == "full":
        nets["G2"] = pg2_g2(width, num_blocks - 2, image_size, shape)
    if variant in ("full", "g1-d"):
        nets["D"] = pg2_d(d_width, image_size)
    return nets
