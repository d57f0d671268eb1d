"""Perceptual losses. Pure functions of their inputs; ``perceptual_losses`` returns named parts.

Normalisation (so weights mean the same at any image size or batch size):

* ``gram_matrix(F)`` for features F of shape (N, C, H, W) is ``F F^T / (C H W)``, computed in
  float32: shape (N, C, C).
* content loss: squared difference of the content-layer activations, relative to the photo's own
  activations: ``sum((F - Fc)^2) / sum(Fc^2)`` per image, averaged over the batch. 0 = identical,
  1 = as far as a blank image.
* style loss of a layer: squared difference between Gram matrices relative to the target's:
  ``sum((G - T)^2) / sum(T^2)``, averaged over the batch. Raw Gram magnitudes differ by five orders
  between relu1_1 and relu5_1; the relative form makes every layer about 1 for an unstyled image,
  so per-layer weights mean what they say.
* total variation: mean absolute difference between neighbouring pixels (images in [0, 1]).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .config import LossConfig


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of (N, C, H, W) features, normalised by C*H*W, in float32: (N, C, C)."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def relative_error(x: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``sum((x - t)^2) / sum(t^2)`` per sample (first dimension), averaged; in float32."""
    x, target = x.float(), target.float().expand_as(x)
    dims = tuple(range(1, x.dim()))
    return ((x - target).pow(2).sum(dims) / (target.pow(2).sum(dims) + eps)).mean()


def content_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative squared error of (N, C, H, W) activations to the photo's activations."""
    return relative_error(output, target)


def style_loss(gram: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative squared error of a batch of Grams (N, C, C) to one target Gram (C, C) or (N, C, C)."""
    return relative_error(gram, target)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    return dx + dy


def perceptual_losses(
    output: torch.Tensor,
    output_features: Mapping[str, torch.Tensor],
    content_features: Mapping[str, torch.Tensor],
    style_targets: Mapping[str, torch.Tensor],
    config: LossConfig,
) -> dict[str, torch.Tensor]:
    """Weighted losses: ``{"content", "style/<layer>"..., "style", "tv", "total"}``.

    Each part is already multiplied by its weight, so ``total`` is their plain sum.
    """
    parts: dict[str, torch.Tensor] = {}
    layer = config.content_layer
    parts["content"] = config.content_weight * content_loss(output_features[layer], content_features[layer])
    style = output.new_zeros((), dtype=torch.float32)
    for name, weight in zip(config.style_layers, config.style_layer_weights, strict=True):
        part = config.style_weight * weight * style_loss(gram_matrix(output_features[name]), style_targets[name])
        parts[f"style/{name}"] = part
        style = style + part
    parts["style"] = style
    parts["tv"] = config.tv_weight * tv_loss(output.float())
    parts["total"] = parts["content"] + style + parts["tv"]
    return parts
