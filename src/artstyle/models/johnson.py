"""Johnson et al. (2016) feed-forward stylizer, with the usual later fixes.

9x9 conv, two stride-2 convs, residual blocks, two nearest-upsample + conv stages, 9x9 conv out;
reflection padding and instance norm throughout. Images in and out are RGB in [0, 1]; the output
is a sigmoid, so it is a valid image by construction (no ImageNet de-normalisation to get wrong).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ConvLayer, ConvNormReLU, ResidualBlock, UpsampleConv


class TransformerNet(nn.Module):
    """(N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1], for any H and W."""

    stride = 4  # the encoder downsamples by this much; inputs are padded to a multiple of it

    def __init__(self, channels: int = 32, residual_blocks: int = 5) -> None:
        super().__init__()
        c = channels
        self.encoder = nn.Sequential(
            ConvNormReLU(3, c, 9),
            ConvNormReLU(c, 2 * c, 3, stride=2),
            ConvNormReLU(2 * c, 4 * c, 3, stride=2),
        )
        self.residuals = nn.Sequential(*(ResidualBlock(4 * c) for _ in range(residual_blocks)))
        self.decoder = nn.Sequential(
            UpsampleConv(4 * c, 2 * c),
            UpsampleConv(2 * c, c),
            ConvLayer(c, 3, 9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % self.stride, (-w) % self.stride
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        y = self.decoder(self.residuals(self.encoder(x)))
        return torch.sigmoid(y[..., :h, :w])
