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
* sliced style loss of a layer (``LossConfig.style_loss = "sliced"``): the sliced Wasserstein
  distance between the output's features and a pool of features sampled over the movement's
  paintings (Heitz et al., "A Sliced Wasserstein Loss for Neural Texture Synthesis", CVPR 2021).
  Features are projected on C random unit directions (C = the layer's channels, new directions
  at every step); along each, the sorted output values are compared with the pool's quantiles:
  ``sum((sorted(F P) - quantiles(T P))^2) / sum(quantiles(T P)^2)`` per image. Where a Gram
  matrix keeps only the pool's second moments, which averaging over paintings smooths into one
  mean palette and texture, this matches whole distributions, so a movement's several modes
  (dark grounds and bright lights, flat planes and sharp edges) survive.
* total variation: mean absolute difference between neighbouring pixels (images in [0, 1]).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..config import LossConfig


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


def random_directions(channels: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(channels, channels) random unit directions as columns, a function of ``seed`` alone."""
    generator = torch.Generator(device=device).manual_seed(seed)
    directions = torch.randn(channels, channels, generator=generator, device=device)
    return directions / directions.norm(dim=0, keepdim=True)


def sliced_style_loss(features: torch.Tensor, pool: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Relative sliced Wasserstein distance of (N, C, H, W) features to a feature pool along directions (C, K).

    ``pool`` is (M, C), one pool for every image, or (N, M, C), one per image.
    """
    n, c, h, w = features.shape
    # (N, K, HW) and (K, M) or (N, K, M): each direction's values contiguous, sorted along the last dim
    out = torch.sort(directions.T @ features.float().reshape(n, c, h * w), dim=-1).values
    target = torch.sort(directions.T @ pool.float().transpose(-1, -2), dim=-1).values
    m = target.shape[-1]
    index = ((torch.arange(h * w, device=features.device) + 0.5) * (m / (h * w))).long().clamp(max=m - 1)
    return relative_error(out, target[..., index].expand_as(out))


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
    directions: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Weighted losses: ``{"content", "style/<layer>"..., "style", "tv", "total"}``.

    ``style_targets`` holds, per layer, the target Gram matrix (``config.style_loss == "gram"``)
    or the painting feature pool (``"sliced"``, which also needs the step's ``directions``).
    Each part is already multiplied by its weight, so ``total`` is their plain sum.
    """
    parts: dict[str, torch.Tensor] = {}
    layer = config.content_layer
    parts["content"] = config.content_weight * content_loss(output_features[layer], content_features[layer])
    style = output.new_zeros((), dtype=torch.float32)
    for name, weight in zip(config.style_layers, config.style_layer_weights, strict=True):
        if config.style_loss == "sliced":
            assert directions is not None, "the sliced style loss needs the step's directions"
            distance = sliced_style_loss(output_features[name], style_targets[name], directions[name])
        else:
            distance = style_loss(gram_matrix(output_features[name]), style_targets[name])
        part = config.style_weight * weight * distance
        parts[f"style/{name}"] = part
        style = style + part
    parts["style"] = style
    parts["tv"] = config.tv_weight * tv_loss(output.float())
    parts["total"] = parts["content"] + style + parts["tv"]
    return parts
