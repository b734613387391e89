"""Building blocks shared by PG2 and MsCGAN: residual U-Net generators and DCGAN discriminators."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from reidaug.config import Act, GeneratorShape, Init, Norm
from reidaug.data.parts import PartWarp, deform

#: encoder levels whose skips get the warped source features (Deformable GAN's first four)
DEFORM_LEVELS = 4

Schedule = Literal["linear", "table"]


def channel_schedule(width: int, num_blocks: int, schedule: Schedule) -> list[int]:
    """Channels of each encoder block.

    ``linear`` grows as PG2 does (``w, 2w, 3w, ...``); ``table`` doubles as in the MsCGAN
    appendix tables (``w, 2w, 4w, ...``).
    """
    if schedule == "linear":
        return [width * (i + 1) for i in range(num_blocks)]
    if schedule == "table":
        return [width * 2**i for i in range(num_blocks)]
    raise ValueError(f'unknown channel schedule "{schedule}"; expected one of: linear, table')


def activation(act: Act) -> nn.Module:
    """The generators' nonlinearity: ReLU (both papers' text) or ELU (PG2's released code)."""
    if act == "relu":
        return nn.ReLU(inplace=True)
    if act == "elu":
        return nn.ELU(inplace=True)
    raise ValueError(f'unknown activation "{act}"; expected one of: relu, elu')


def normalization(norm: Norm, channels: int) -> list[nn.Module]:
    """The layer a generator conv's output goes through before its nonlinearity: none (both
    papers), batch norm (Pose-Transfer's generators) or instance norm, with learnt affine."""
    if norm == "none":
        return []
    if norm == "batch":
        return [nn.BatchNorm2d(channels)]
    if norm == "instance":
        return [nn.InstanceNorm2d(channels, affine=True)]
    raise ValueError(f'unknown norm "{norm}"; expected one of: none, batch, instance')


def conv(
    cin: int,
    cout: int,
    k: int = 3,
    stride: int = 1,
    act: Act | None = "relu",
    norm: Norm = "none",
) -> nn.Sequential:
    """A ``k x k`` convolution with 'same'-style padding, then ``norm`` and ``act`` unless
    ``act`` is ``None`` (an output conv: neither)."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2 if k % 2 else 1)
    ]
    if act is not None:
        layers += [*normalization(norm, cout), activation(act)]
    return nn.Sequential(*layers)


def init_weights(net: nn.Module, init: Init) -> None:
    """Re-initialise ``net``'s convolutions and linear layers: ``torch`` keeps PyTorch's defaults;
    ``xavier`` draws Glorot-uniform weights and zero biases (TensorFlow slim's defaults, which
    PG2's released code uses)."""
    if init == "torch":
        return
    if init != "xavier":
        raise ValueError(f'unknown init "{init}"; expected one of: torch, xavier')
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ResBlock(nn.Module):
    """PG2's simplified residual block: two 3x3 conv+ReLU at stride 1 inside a skip connection.

    With ``cin != cout`` the skip starts after the first conv (no extra projection weights).
    With ``residual=False`` it is a plain block of two convs (MsCGAN's G2 "CONV BLOCK").
    """

    def __init__(
        self,
        cin: int,
        cout: int | None = None,
        residual: bool = True,
        act: Act = "relu",
        norm: Norm = "none",
    ) -> None:
        super().__init__()
        cout = cout or cin
        self.conv1 = conv(cin, cout, act=act, norm=norm)
        self.conv2 = conv(cout, cout, act=act, norm=norm)
        self.same = cin == cout
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        if not self.residual:
            return self.conv2(y)
        return self.conv2(y) + (x if self.same else y)


class Up(nn.Module):
    """Upsampling by 2: nearest neighbour then a conv (PG2), or a transposed conv (MsCGAN)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        mode: Literal["nearest", "deconv"],
        k: int = 3,
        act: Act = "relu",
        norm: Norm = "none",
    ) -> None:
        super().__init__()
        self.mode = mode
        if mode == "nearest":
            self.conv = conv(cin, cout, k, act=act, norm=norm)
        else:
            pad, out_pad = (1, 1) if k == 3 else (1, 0)
            self.conv = nn.Sequential(
                nn.ConvTranspose2d(cin, cout, k, 2, padding=pad, output_padding=out_pad),
                *normalization(norm, cout),
                activation(act),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x)


class UNetGenerator(nn.Module):
    """The PG2 / MsCGAN generator: a residual U-Net, optionally with a fully connected bottleneck.

    Encoder: a 3x3 conv to ``c0``, then ``num_blocks`` residual blocks; every block but the last
    is followed by a stride-2 conv to the next block's channels. With ``fc_dim`` the last feature
    map is flattened to ``fc_dim`` units and mapped back to ``width`` channels at the same size
    (no activation on either FC). The decoder mirrors the encoder: at each level it concatenates
    the encoder's skip (``skip="concat"``, both papers) or adds it (``skip="add"``, as in
    Deformable GAN's and Pose-Transfer's cheaper decoders), runs a residual block and upsamples to
    the previous level's channels. A final 3x3 conv (no activation) gives the image. No dropout;
    no normalisation unless ``norm`` asks for it.

    Args:
        in_channels: input channels (21 for G1: image + 18 heatmaps; 6 for G2).
        out_channels: output channels.
        width: base channel count (128 in both papers).
        num_blocks: residual blocks ``N`` (5 for G1 and 3 for G2 at 128x64).
        schedule: ``linear`` (PG2) or ``table`` (MsCGAN) channel growth.
        fc_dim: bottleneck units (64), or ``None`` for a fully convolutional net (G2).
        image_size: ``(H, W)`` of the input, needed by the FC bottleneck.
        down_kernel: kernel of the stride-2 convs (3 for PG2, 4 for MsCGAN's G2).
        up: ``nearest`` (upsample + conv) or ``deconv`` (transposed conv).
        decoder_reduce: the decoder block's first conv maps back to the level's encoder channels
            (MsCGAN) instead of keeping the concatenated width (PG2).
        residual: residual blocks (PG2, MsCGAN G1) or plain conv blocks (MsCGAN G2).
        fc_channels: channels the FC bottleneck maps back to at the bottom resolution
            (default ``width``: PG2's 128 x 8 x 4 = 4096 dims; MsCGAN's 4096 dims at 16 x 8
            are ``width // 4``).
        zero_out: initialise the output conv to zero, so a difference-map generator starts as
            the identity on its stage-1 input.
        shape: the skip join, activation, initialisation, normalisation and upsampling
            (:class:`reidaug.config.GeneratorShape`). With ``skip="add"`` every decoder block
            keeps its level's encoder width and the FC bottleneck maps back to the deepest
            level's channels unless ``fc_channels`` is given; a ``norm`` layer sits between
            every conv and its activation (not after the FC layers or the output conv);
            ``upsample="nearest-1x1"`` replaces ``up`` with nearest neighbour then a 1x1 conv.
            ``skip="deform"`` joins as ``add`` does, and adds to each of the first
            :data:`DEFORM_LEVELS` skips the features of a light second encoder (one conv per
            level) over the source (``source_channels``: image and its pose), warped part by
            part to the target pose
            (:func:`reidaug.data.parts.deform`); the input then has 3 more channels (the
            part-warped source image) and ``forward`` takes ``source`` and ``warp``.
        source_channels: channels of the source encoder's input (``skip="deform"``; default
            ``in_channels``).
        warp_residual: with ``skip="deform"``, return the part-warped source (the input's last
            three channels) plus the network's output, which starts at zero.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 3,
        width: int = 128,
        num_blocks: int = 5,
        schedule: Schedule = "linear",
        fc_dim: int | None = 64,
        image_size: tuple[int, int] = (128, 64),
        down_kernel: int = 3,
        up: Literal["nearest", "deconv"] = "nearest",
        decoder_reduce: bool = False,
        residual: bool = True,
        fc_channels: int | None = None,
        zero_out: bool = False,
        shape: GeneratorShape = GeneratorShape(),  # noqa: B008 (frozen, validated)
        source_channels: int | None = None,
        warp_residual: bool = False,
    ) -> None:
        super().__init__()
        if num_blocks < 1:
            raise ValueError("num_blocks must be at least 1")
        skip, act, norm, upsample = shape.skip, shape.act, shape.norm, shape.upsample
        up_k = down_kernel if upsample == "paper" else 1
        up = up if upsample == "paper" else "nearest"
        ch = channel_schedule(width, num_blocks, schedule)
        self.channels, self.fc_dim, self.skip = ch, fc_dim, skip
        additive = skip in ("add", "deform")
        self.fc_channels = fc_channels or (ch[-1] if additive else width)
        f = 2 ** (num_blocks - 1)
        if image_size[0] % f or image_size[1] % f:
            raise ValueError(f"image size {image_size} is not divisible by 2^(num_blocks-1) = {f}")
        self.bottom = (image_size[0] // f, image_size[1] // f)
        if skip == "deform":
            levels = min(DEFORM_LEVELS, num_blocks)
            # a light source encoder, one conv per level: with the main encoder's residual
            # blocks a CPU training step cost 1.6 times the plain one
            self.src_enc = nn.ModuleList(
                [conv(source_channels or in_channels, ch[0], act=act, norm=norm)]
                + [
                    conv(ch[i], ch[i + 1], down_kernel, 2, act=act, norm=norm)
                    for i in range(levels - 1)
                ]
            )
            in_channels += 3
        self.conv_in = conv(in_channels, ch[0], act=act, norm=norm)
        self.enc = nn.ModuleList(ResBlock(c, residual=residual, act=act, norm=norm) for c in ch)
        self.down = nn.ModuleList(
            conv(ch[i], ch[i + 1], down_kernel, 2, act=act, norm=norm)
            for i in range(num_blocks - 1)
        )
        hw = self.bottom[0] * self.bottom[1]
        if fc_dim:
            self.fc_in = nn.Linear(ch[-1] * hw, fc_dim)
            self.fc_out = nn.Linear(fc_dim, self.fc_channels * hw)
            x_ch = self.fc_channels
        else:
            x_ch = 0  # the deepest feature map is the skip itself
        self.dec = nn.ModuleList()
        self.up = nn.ModuleList()
        for level in reversed(range(num_blocks)):
            if additive and x_ch not in (0, ch[level]):
                raise ValueError(
                    f"skip={skip} needs {ch[level]} channels to add at level {level}, got {x_ch}"
                )
            cin = ch[level] if additive else x_ch + ch[level]
            cout = ch[level] if decoder_reduce else cin
            self.dec.append(ResBlock(cin, cout, residual=residual, act=act, norm=norm))
            if level > 0:
                self.up.append(Up(cout, ch[level - 1], up, up_k, act, norm))
                x_ch = ch[level - 1]
            else:
                x_ch = cout
        self.conv_out = conv(x_ch, out_channels, act=None)
        init_weights(self, shape.init)
        if warp_residual and skip != "deform":
            raise ValueError("warp_residual needs skip=deform (the warped source is its base)")
        self.warp_residual = warp_residual
        if zero_out or warp_residual:
            nn.init.zeros_(self.conv_out[0].weight)
            nn.init.zeros_(self.conv_out[0].bias)

    def forward(
        self,
        x: torch.Tensor,
        source: torch.Tensor | None = None,
        warp: PartWarp | None = None,
    ) -> torch.Tensor:
        """The image for input ``x``; with ``skip="deform"`` also the source encoder's input
        ``source`` and the part geometry ``warp`` of the (source, target) poses."""
        base = x[:, -3:] if self.warp_residual else None
        x = self.conv_in(x)
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x)
            skips.append(x)
            if i < len(self.down):
                x = self.down[i](x)
        if self.skip == "deform":
            if source is None or warp is None:
                raise ValueError("a deformable-skip generator needs the source input and warp")
            s = source
            for i, layer in enumerate(self.src_enc):
                s = layer(s)
                skips[i] = skips[i] + deform(s, warp)
        if self.fc_dim:
            z = self.fc_in(x.flatten(1))
            x = self.fc_out(z).view(x.shape[0], self.fc_channels, *self.bottom)
            x = self._join(x, skips[-1])
        for j, block in enumerate(self.dec):
            if j > 0:
                x = self._join(x, skips[-1 - j])
            x = block(x)
            if j < len(self.up):
                x = self.up[j](x)
        out = self.conv_out(x)
        return out if base is None else base + out

    def _join(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, skip], 1) if self.skip == "concat" else x + skip


class DCGANDiscriminator(nn.Module):
    """DCGAN-style discriminator: 4x4 stride-2 convs, batch norm on all but the first,
    LeakyReLU 0.2, then one logit from a linear layer over the last feature map.

    Args:
        in_channels: 6 for a (condition, image) pair.
        width: channels of the first conv; doubled at every layer.
        num_layers: stride-2 convs (4 at 128x64: M-1 with M=5).
        image_size: ``(H, W)`` of the input.
    """

    def __init__(
        self,
        in_channels: int = 6,
        width: int = 64,
        num_layers: int = 4,
        image_size: tuple[int, int] = (128, 64),
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i in range(num_layers):
            cout = width * 2**i
            layers.append(nn.Conv2d(c, cout, 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c = cout
        self.features = nn.Sequential(*layers)
        h, w = image_size[0] >> num_layers, image_size[1] >> num_layers
        if h < 1 or w < 1:
            raise ValueError(
                f"{num_layers} stride-2 layers are too many for an input of {image_size}"
            )
        self.out = nn.Linear(c * h * w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x).flatten(1)).squeeze(1)
