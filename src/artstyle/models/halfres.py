"""A stylizer that never convolves at full resolution: for students that must be quick on a CPU.

The Johnson network's full-resolution layers (the 9x9 convolutions in and out, the last
upsampling stage and their instance norms and paddings) are half the ``-fast`` network's time in
OpenVINO on an AVX2 CPU, though a third of its arithmetic. Here the photo's 2x2 blocks of pixels
become 12 channels at half resolution (space-to-depth), one 3x3 convolution takes them to twice
the width, a stride-2 one to four times, then come the residual blocks and one upsampling stage
back to half resolution, and a last 3x3 convolution gives each pixel of every 2x2 block its
colour (depth-to-space). It is not an exact rewrite of the Johnson network, so it learns from
one: ``artstyle distil --arch halfres``.
"""

from __future__ import annotations

import torch

from .layers import ConvLayer, ConvNormReLU, PaddedStylizer, ResidualBlock, StyledSequential, UpsampleConv
from .rewrite import depth_to_space, space_to_depth

BLOCK = 2  # pixels per side of the blocks the photo is regrouped in


class HalfResNet(PaddedStylizer):
    """(N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1], for any H and W."""

    stride = 4  # space-to-depth and one stride-2 convolution; inputs are padded to a multiple of it

    def __init__(self, channels: int = 8, residual_blocks: int = 5, movements: int = 1) -> None:
        super().__init__()
        c, m, rr = channels, movements, BLOCK * BLOCK
        self.movements = movements
        self.encoder = StyledSequential(
            ConvNormReLU(3 * rr, 2 * c, 3, movements=m),
            ConvNormReLU(2 * c, 4 * c, 3, stride=2, movements=m),
        )
        self.residuals = StyledSequential(*(ResidualBlock(4 * c, m) for _ in range(residual_blocks)))
        self.decoder = StyledSequential(
            UpsampleConv(4 * c, 2 * c, movements=m),
            ConvLayer(2 * c, 3 * rr, 3),
        )

    def paint(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        y = self.encoder(space_to_depth(x, BLOCK), style)
        return depth_to_space(self.decoder(self.residuals(y, style), style), BLOCK)
