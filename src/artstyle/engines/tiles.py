"""Painting a large image in tiles that agree: the collages its instance norm statistics come
from, and the weights that blend overlapping tiles (see ``TorchStylizer.stylize_tiled``)."""

from __future__ import annotations

import torch

STATS_GRID = 8  # tiled painting takes its statistics from collages of 8x8 crops (see collage)


def collage(image: torch.Tensor, scale: float, cell: int, offset: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """An image of the size of ``image`` scaled by ``scale``, made of full-resolution crops: each
    block of a grid of ``cell`` px (shifted by ``offset``, px) is the crop of the same size around
    the matching point of ``image``. It keeps the image's layout and, unlike a downscaled copy, its
    fine detail."""
    _, _, h, w = image.shape
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    out = image.new_empty(1, 3, sh, sw)
    for top, bottom in cells(sh, cell, offset[0]):
        for left, right in cells(sw, cell, offset[1]):
            ch, cw = bottom - top, right - left
            y = int(min(max((top + ch / 2) / scale - ch / 2, 0), h - ch))
            x = int(min(max((left + cw / 2) / scale - cw / 2, 0), w - cw))
            out[:, :, top:bottom, left:right] = image[:, :, y: y + ch, x: x + cw]
    return out


def cells(length: int, cell: int, offset: int) -> list[tuple[int, int]]:
    """(start, end) of the grid cells along one side: edges every ``cell`` px from ``offset``."""
    edges = sorted({0, *range(offset % cell or cell, length, cell), length})
    return list(zip(edges, edges[1:], strict=False))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return [*starts, length - tile]


def ramp(n: int, overlap: int, fade_in: bool, fade_out: bool) -> torch.Tensor:
    """1-D blending weights: 1 in the middle, rising from ~0 over ``overlap`` px at inner edges."""
    weight = torch.ones(n)
    ramp = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
    k = min(overlap, n)
    if fade_in:
        weight[:k] = torch.minimum(weight[:k], ramp[:k])
    if fade_out:
        weight[n - k:] = torch.minimum(weight[n - k:], ramp[:k].flip(0))
    return weight
