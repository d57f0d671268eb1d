"""Building blocks shared by the stylizer networks.

Every block takes ``(x, style)``. ``style`` is ``None`` for a one-movement network, or an
(N, movements) tensor of mixing weights for a multi-movement network, whose instance norms then
use per-movement scales and shifts (conditional instance norm, Dumoulin et al., 2017). Mixing
weights that sum to one blend movements by interpolating those parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Styled(nn.Module):
    """A module whose forward takes ``(x, style)``."""


class PaddedStylizer(Styled):
    """A stylizer network's shared outside: (N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1], for any
    H and W. The input is padded (reflected) to a multiple of ``stride``, :meth:`paint` runs on it,
    and the result is cropped back and put through a sigmoid, so it is a valid image by
    construction."""

    stride: int  # the network downsamples by this much; inputs are padded to a multiple of it

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """``style``: (N, movements) mixing weights, or (movements,) for the whole batch; None
        for a one-movement network."""
        if style is not None and style.dim() == 1:
            style = style.expand(x.shape[0], -1)
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % self.stride, (-w) % self.stride
        if torch.jit.is_tracing() or pad_h or pad_w:  # an exported graph must pad any size
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        return torch.sigmoid(self.paint(x, style)[..., :h, :w])

    def paint(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        """The network on a padded input, before the sigmoid."""
        raise NotImplementedError


class StyledSequential(nn.Sequential):
    """Like ``nn.Sequential``, passing ``style`` on to the children that take it."""

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        for module in self:
            x = module(x, style) if isinstance(module, (Styled, StyledSequential)) else module(x)
        return x


class InstanceNorm(Styled):
    """Instance norm with a learned scale and shift: one pair, or one pair per movement.

    With one movement the parameters are (C,) and the layer equals ``nn.InstanceNorm2d(C,
    affine=True)``; with M movements they are (M, C) and ``style`` (N, M) mixes them.
    """

    def __init__(self, channels: int, movements: int = 1) -> None:
        super().__init__()
        shape = (channels,) if movements == 1 else (movements, channels)
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        # For tiled inference (see artstyle.stylize.stylize_tiled): "record" keeps this layer's
        # statistics of each pass over a view of the whole image; freeze() pools them, and
        # "frozen" normalises every tile with them, so tiles share one normalisation and no seams
        # show.
        self.mode = "normal"
        self.stats: tuple[torch.Tensor, torch.Tensor] | None = None
        self.recorded: list[tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def movements(self) -> int:
        return 1 if self.weight.dim() == 1 else self.weight.shape[0]

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode != "normal":
            return self._affine(self._normalise_with_stats(x), style)
        if self.weight.dim() == 1:
            return instance_norm(x, self.weight, self.bias)
        return self._affine(instance_norm(x), style)

    def _normalise_with_stats(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "record":
            xf = x.float()
            self.stats = (xf.mean((2, 3), keepdim=True), xf.var((2, 3), unbiased=False, keepdim=True))
            self.recorded.append(self.stats)
        if self.stats is None:
            raise RuntimeError("frozen instance norm without recorded statistics")
        mean, var = self.stats
        return ((x.float() - mean) * torch.rsqrt(var + 1e-5)).to(x.dtype)

    def freeze(self) -> None:
        """Normalise from now on with the pooled statistics of the recorded passes (equal weights)."""
        if not self.recorded:
            raise RuntimeError("freezing instance norm without recorded statistics")
        means = torch.stack([m for m, _ in self.recorded])
        squares = torch.stack([v + m * m for m, v in self.recorded])  # E[x^2] of each pass
        mean = means.mean(0)
        self.stats = (mean, (squares.mean(0) - mean * mean).clamp_min(0))
        self.recorded, self.mode = [], "frozen"

    def _affine(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        if self.weight.dim() == 1:
            return x * self.weight[None, :, None, None].to(x.dtype) + self.bias[None, :, None, None].to(x.dtype)
        if style is None:
            raise ValueError("this network paints several movements: say which (style weights)")
        style = style.to(self.weight.dtype)
        scale = (style @ self.weight)[:, :, None, None]
        shift = (style @ self.bias)[:, :, None, None]
        return x * scale.to(x.dtype) + shift.to(x.dtype)


def instance_norm(x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                  eps: float = 1e-5) -> torch.Tensor:
    """``F.instance_norm``, faster at inference.

    Without autograd each image goes through ``F.batch_norm`` with batch statistics: for one image
    the same numbers, but without instance norm's reshape to (1, N*C, H, W), which copies a
    channels_last tensor and took half of the time of bf16 inference on the CPU. Under
    ``torch.compile`` the normalisation is written out (``scale_shift_norm``), which the compiler
    fuses with its neighbours, rather than a loop of batch norms and a concatenation. Training and
    ONNX tracing keep ``F.instance_norm``.
    """
    if torch.is_grad_enabled() or torch.jit.is_tracing():
        return F.instance_norm(x, weight=weight, bias=bias, eps=eps)
    if torch.compiler.is_compiling():
        return scale_shift_norm(x, weight, bias, eps)
    w = None if weight is None else weight.to(x.dtype)
    b = None if bias is None else bias.to(x.dtype)
    parts = [F.batch_norm(x[i: i + 1], None, None, w, b, training=True, eps=eps) for i in range(x.shape[0])]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def scale_shift_norm(x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                     eps: float = 1e-5) -> torch.Tensor:
    """Instance norm as one pass for float32 statistics and one multiply-add, in any memory layout."""
    var, mean = torch.var_mean(x.float(), (2, 3), keepdim=True, correction=0)
    scale = torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight.float()[None, :, None, None]
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias.float()[None, :, None, None]
    return torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))


class ConvLayer(nn.Sequential):
    """Reflection padding then a convolution, so borders carry no zero-padding artefacts."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> None:
        super().__init__(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(in_ch, out_ch, kernel, stride))


class ConvNormReLU(StyledSequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, movements: int = 1) -> None:
        super().__init__(
            ConvLayer(in_ch, out_ch, kernel, stride),
            InstanceNorm(out_ch, movements),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(Styled):
    """Two 3x3 conv + instance norm layers with an identity shortcut (Johnson et al., 2016)."""

    def __init__(self, channels: int, movements: int = 1) -> None:
        super().__init__()
        self.body = StyledSequential(
            ConvLayer(channels, channels, 3),
            InstanceNorm(channels, movements),
            nn.ReLU(inplace=True),
            ConvLayer(channels, channels, 3),
            InstanceNorm(channels, movements),
        )

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.body(x, style)


class UpsampleConv(Styled):
    """Nearest-neighbour 2x upsampling then conv + norm + ReLU: no checkerboard artefacts."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, movements: int = 1) -> None:
        super().__init__()
        self.conv = ConvNormReLU(in_ch, out_ch, kernel, movements=movements)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"), style)
