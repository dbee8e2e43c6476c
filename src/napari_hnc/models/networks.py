"""The segmentation networks: three 3D U-Nets sharing one skeleton.

=================  ===========================================  =========================
network            blocks                                       source
=================  ===========================================  =========================
SENormResUNet      residual SE-Norm blocks, encoder and         Iantsen 2020 / Lee 2023
                   decoder; hypercolumn outputs summed          (seed 000)
ResUNetMHSA        residual blocks (instance norm), strided     Nikulin 2023 (seed 004)
                   down-sampling, self-attention bottleneck
RRSEUNet           residual recurrent SE-Norm blocks (t = 2)    seed 001
                   in the contracting path, SE-Norm decoder,
                   upsampling pathway (hypercolumns)
=================  ===========================================  =========================

All take ``in_channels`` (2 for CT + PET; 5 for the click-guided variants, which
add positive clicks, negative clicks and the previous mask), ``out_channels``
(3: background, primary tumour, lymph node), ``base_channels`` (width of the
first level, doubled per level up to ``max_channels``) and ``depth`` (number of
2x down-samplings; inputs must be divisible by ``2 ** depth``). They return
logits.

>>> import torch
>>> net = SENormResUNet(in_channels=2, base_channels=4, depth=2)
>>> net(torch.zeros(1, 2, 16, 16, 16)).shape
torch.Size([1, 3, 16, 16, 16])
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .blocks import BottleneckMHSA, Conv3d, ConvNormAct, Hypercolumn, RecurrentResBlock, ResBlock, ResSENormBlock

BlockFactory = Callable[[int, int], nn.Module]


class UNet3D(nn.Module):
    """A configurable 3D U-Net skeleton (encoder, bottleneck, decoder, optional hypercolumns)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int,
        depth: int,
        encoder_block: BlockFactory,
        decoder_block: BlockFactory,
        *,
        downsample: str = "pool",
        bottleneck: nn.Module | None = None,
        hypercolumn: bool = False,
        max_channels: int = 320,
    ) -> None:
        super().__init__()
        if depth < 1 or base_channels < 1 or in_channels < 1 or out_channels < 1:
            raise ValueError("depth, base_channels, in_channels and out_channels must all be >= 1")
        widths = [min(base_channels * 2**level, max_channels) for level in range(depth + 1)]
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        self.encoders = nn.ModuleList(
            [encoder_block(in_channels if lvl == 0 else widths[lvl - 1], widths[lvl]) for lvl in range(depth + 1)]
        )
        self.downs = nn.ModuleList([_down(downsample, widths[lvl]) for lvl in range(depth)])
        self.bottleneck = bottleneck if bottleneck is not None else nn.Identity()
        self.ups = nn.ModuleList(
            [nn.ConvTranspose3d(widths[lvl + 1], widths[lvl], 2, stride=2) for lvl in reversed(range(depth))]
        )
        self.decoders = nn.ModuleList([decoder_block(2 * widths[lvl], widths[lvl]) for lvl in reversed(range(depth))])
        levels = range(depth - 1, 0, -1) if hypercolumn else ()
        self.hypercolumns = nn.ModuleList([Hypercolumn(widths[lvl], widths[0], 2**lvl) for lvl in levels])
        self.head = Conv3d(widths[0], out_channels, 1)

    @property
    def divisor(self) -> int:
        """Input sizes must be multiples of this."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, encoder in enumerate(self.encoders):
            if level:
                x = self.downs[level - 1](skips[-1])
            x = encoder(x)
            skips.append(x)
        x = self.bottleneck(skips.pop())
        columns = []
        for index, (up, decoder) in enumerate(zip(self.ups, self.decoders)):
            x = decoder(torch.cat([skips.pop(), up(x)], dim=1))
            if index < len(self.hypercolumns):
                columns.append(self.hypercolumns[index](x))
        for column in columns:
            x = x + column
        return self.head(x)


def _down(kind: str, channels: int) -> nn.Module:
    if kind == "pool":
        return nn.MaxPool3d(2)
    if kind == "conv":
        return ConvNormAct(channels, channels, 3, stride=2)
    raise ValueError(f"downsample must be 'pool' or 'conv', not {kind!r}")


class SENormResUNet(UNet3D):
    """Residual U-Net with SE-Norm blocks and summed multi-scale (hypercolumn) outputs (seed 000).

    Parameters
    ----------
    in_channels, out_channels : int
    base_channels : int
        Channels of the first level (Iantsen used 24; the bundled CPU size is 8).
    depth : int
        Number of 2x down-samplings.
    reduction : int
        Squeeze-excitation reduction ratio.
    """

    def __init__(
        self, in_channels: int = 2, out_channels: int = 3, base_channels: int = 8, depth: int = 3,
        reduction: int = 2, max_channels: int = 320,
    ) -> None:
        def block(cin: int, cout: int) -> nn.Module:
            return ResSENormBlock(cin, cout, 3, reduction)

        super().__init__(
            in_channels, out_channels, base_channels, depth, block, block,
            downsample="pool", hypercolumn=True, max_channels=max_channels,
        )


class ResUNetMHSA(UNet3D):
    """Residual 3D U-Net with multi-head self-attention at the bottleneck (seed 004).

    Parameters
    ----------
    heads : int
        Attention heads; the bottleneck width must be divisible by it.
    """

    def __init__(
        self, in_channels: int = 2, out_channels: int = 3, base_channels: int = 8, depth: int = 3,
        heads: int = 4, max_channels: int = 320,
    ) -> None:
        bottleneck_width = min(base_channels * 2**depth, max_channels)
        super().__init__(
            in_channels, out_channels, base_channels, depth, ResBlock, ResBlock,
            downsample="conv", bottleneck=BottleneckMHSA(bottleneck_width, heads), max_channels=max_channels,
        )


class RRSEUNet(UNet3D):
    """U-Net with residual recurrent SE-Norm blocks in the contracting path (seed 001).

    Parameters
    ----------
    recurrence : int
        Time steps ``t`` of each recurrent convolution (seed 001: 2).
    hypercolumn : bool
        Add the upsampling pathway (decoder levels summed at full resolution).
    """

    def __init__(
        self, in_channels: int = 2, out_channels: int = 3, base_channels: int = 8, depth: int = 3,
        recurrence: int = 2, reduction: int = 2, hypercolumn: bool = True, max_channels: int = 320,
    ) -> None:
        def encoder(cin: int, cout: int) -> nn.Module:
            return RecurrentResBlock(cin, cout, recurrence, reduction)

        def decoder(cin: int, cout: int) -> nn.Module:
            return ResSENormBlock(cin, cout, 3, reduction)

        super().__init__(
            in_channels, out_channels, base_channels, depth, encoder, decoder,
            downsample="pool", hypercolumn=hypercolumn, max_channels=max_channels,
        )


#: Architecture name (as written in model cards) -> network class.
ARCHITECTURES: dict[str, type[UNet3D]] = {
    "SENormResUNet": SENormResUNet,
    "ResUNetMHSA": ResUNetMHSA,
    "RRSEUNet": RRSEUNet,
}
