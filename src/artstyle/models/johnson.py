"""Johnson et al. (2016) feed-forward stylizer, with the usual later fixes.

9x9 conv, two stride-2 convs, residual blocks, two nearest-upsample + conv stages, 9x9 conv out;
reflection padding and instance norm throughout. Images in and out are RGB in [0, 1]; the output
is a sigmoid, so it is a valid image by construction (no ImageNet de-normalisation to get wrong).

With ``movements > 1`` every instance norm is conditional (Dumoulin et al., 2017): one network
paints several movements, chosen or blended by the ``style`` weights given to ``forward``.
"""

from __future__ import annotations

import torch

from .layers import ConvLayer, ConvNormReLU, PaddedStylizer, ResidualBlock, StyledSequential, UpsampleConv


class TransformerNet(PaddedStylizer):
    """(N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1], for any H and W."""

    stride = 4  # the encoder downsamples by this much; inputs are padded to a multiple of it

    def __init__(self, channels: int = 32, residual_blocks: int = 5, movements: int = 1) -> None:
        super().__init__()
        c, m = channels, movements
        self.movements = movements
        self.encoder = StyledSequential(
            ConvNormReLU(3, c, 9, movements=m),
            ConvNormReLU(c, 2 * c, 3, stride=2, movements=m),
            ConvNormReLU(2 * c, 4 * c, 3, stride=2, movements=m),
        )
        self.residuals = StyledSequential(*(ResidualBlock(4 * c, m) for _ in range(residual_blocks)))
        self.decoder = StyledSequential(
            UpsampleConv(4 * c, 2 * c, movements=m),
            UpsampleConv(2 * c, c, movements=m),
            ConvLayer(c, 3, 9),
        )

    def paint(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        return self.decoder(self.residuals(self.encoder(x, style), style), style)
