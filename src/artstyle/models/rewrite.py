"""Exact rewrites of the Johnson network's full-resolution layers, for compiled inference.

With three channels on one side, cuDNN runs the two 9x9 convolutions (3 to 32 channels and
back) without tensor cores, and they take much of a compiled network's time on a GPU. Both are
rewritten on blocks of 4x4 pixels (space-to-depth): reflection padding, then the padded image
regrouped as (N, 16*C, H/4, W/4), one 3x3 convolution from 48 to 512 channels (or 512 to 48),
and the blocks put back. The same sums in a different order: outputs match to rounding.

Each nearest-upsample + 3x3 convolution becomes a 3x3 convolution at the low resolution to four
times the channels, one per position in the 2x2 block (sub-pixel convolution), so the upsampled
tensor is never written.

Channels are grouped position-major (channel = (row, column, c)), so that in channels_last
memory each pixel of a block is one contiguous run of channels.

What it saves, compiled, on the GPU and CPU it was measured on: benchmarks/README.md.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .johnson import TransformerNet
from .layers import ConvNormReLU, InstanceNorm, Styled, UpsampleConv


def space_to_depth(x: torch.Tensor, r: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, r*r*C, H/r, W/r); channel (i*r + j)*C + c holds pixel (r*y + i, r*x + j)."""
    n, c, h, w = x.shape
    return x.view(n, c, h // r, r, w // r, r).permute(0, 3, 5, 1, 2, 4).reshape(n, r * r * c, h // r, w // r)


def depth_to_space(x: torch.Tensor, r: int) -> torch.Tensor:
    """The inverse of :func:`space_to_depth`."""
    n, rrc, h, w = x.shape
    c = rrc // (r * r)
    return x.view(n, r, r, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(n, c, h * r, w * r)


class BlockConv(nn.Module):
    """Reflection padding and a KxK stride-1 convolution, computed on blocks of ``r`` x ``r`` pixels.

    Output block (y, x) needs padded rows r*y .. r*y + r + K - 2, that is blocks y .. y + B - 1
    with B = (r + K - 2) // r + 1 (3 for K = 9, r = 4). Needs H and W divisible by ``r`` (the
    Johnson network pads its input to a multiple of 4), and K - 1 divisible by ``r``.
    """

    def __init__(self, conv: nn.Conv2d, r: int = 4) -> None:
        super().__init__()
        out_ch, in_ch, k, _ = conv.weight.shape
        if conv.stride != (1, 1) or (k - 1) % r:
            raise ValueError(f"BlockConv needs a stride-1 convolution with K - 1 divisible by {r}")
        self.r, self.pad = r, k // 2
        b = (r + k - 2) // r + 1
        weight = conv.weight.new_zeros(r, r, out_ch, r, r, in_ch, b, b)  # (out row, col, o, in row, col, c, by, bx)
        for a in range(r):
            for c in range(r):
                for by in range(b):
                    u = r * by + c - a  # the kernel row that links input row c of block by to output row a
                    if not 0 <= u < k:
                        continue
                    for a2 in range(r):
                        for c2 in range(r):
                            for bx in range(b):
                                v = r * bx + c2 - a2
                                if 0 <= v < k:
                                    weight[a, a2, :, c, c2, :, by, bx] = conv.weight.detach()[:, :, u, v]
        self.conv = nn.Conv2d(r * r * in_ch, r * r * out_ch, b).to(conv.weight)
        assert conv.bias is not None and self.conv.bias is not None
        with torch.no_grad():
            self.conv.weight.copy_(weight.reshape(self.conv.weight.shape))
            self.conv.bias.copy_(conv.bias.repeat(r * r))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pad
        x = space_to_depth(F.pad(x, (p, p, p, p), mode="reflect"), self.r)
        return depth_to_space(self.conv(x), self.r)


class SubPixelUpsampleConv(Styled):
    """:class:`UpsampleConv` (nearest 2x, reflection pad 1, 3x3 conv, norm, ReLU) without the upsampling.

    Reflection by one pixel of a nearest-upsampled image repeats its edge, so the low-resolution
    input is padded by repeating its edge; output pixel (2y + a, 2x + b) then reads input rows
    y - 1 .. y + 1 through the kernel rows that fall on them.
    """

    def __init__(self, layer: UpsampleConv) -> None:
        super().__init__()
        conv_layer, self.norm, self.relu = layer.conv
        conv = conv_layer[1]  # type: ignore[index]  # a ConvLayer: (padding, convolution)
        assert isinstance(self.norm, InstanceNorm) and isinstance(conv, nn.Conv2d)
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1):
            raise ValueError("SubPixelUpsampleConv needs a 3x3 stride-1 convolution")
        out_ch, in_ch = conv.weight.shape[:2]
        weight = conv.weight.new_zeros(2, 2, out_ch, in_ch, 3, 3)
        for a in range(2):
            for u in range(3):
                dy = (a + u - 1) // 2 + 1  # upsampled padded row 2y + a + u is input row y + dy - 1
                for b in range(2):
                    for v in range(3):
                        dx = (b + v - 1) // 2 + 1
                        weight[a, b, :, :, dy, dx] += conv.weight.detach()[:, :, u, v]
        self.conv = nn.Conv2d(in_ch, 4 * out_ch, 3).to(conv.weight)
        assert conv.bias is not None and self.conv.bias is not None
        with torch.no_grad():
            self.conv.weight.copy_(weight.reshape(self.conv.weight.shape))
            self.conv.bias.copy_(conv.bias.repeat(4))

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        x = depth_to_space(self.conv(repeat_edges(x)), 2)
        return self.relu(self.norm(x, style))


def repeat_edges(x: torch.Tensor) -> torch.Tensor:
    """``F.pad(x, (1, 1, 1, 1), mode="replicate")``, which torch.compile (2.13, CPU) failed to
    compile after a :func:`depth_to_space` ("vr must not be None")."""
    x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], 2)
    return torch.cat([x[:, :, :, :1], x, x[:, :, :, -1:]], 3)


def rewrite_for_gpu(model: TransformerNet, upsampling: bool = True) -> TransformerNet:
    """A copy of ``model`` with :class:`BlockConv` for its 9x9 convolutions and (``upsampling``)
    :class:`SubPixelUpsampleConv` for its upsampling stages; it paints the same pictures."""
    model = copy.deepcopy(model)
    first = model.encoder[0]
    assert isinstance(first, ConvNormReLU)
    first[0] = BlockConv(first[0][1])  # type: ignore[index]
    model.decoder[2] = BlockConv(model.decoder[2][1])  # type: ignore[index]
    if upsampling:
        for i in (0, 1):
            model.decoder[i] = SubPixelUpsampleConv(model.decoder[i])  # type: ignore[arg-type]
    return model
