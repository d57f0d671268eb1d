"""Inference: apply trained movement models to images. Light on purpose: no VGG, no losses, no data.

>>> stylizer = Stylizer.from_pretrained("runs/first/baroque")    # or shipped_models()["baroque"]
>>> stylizer(open_image("photo.jpg"), size=1024).save("baroque.png")
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from .errors import UsageError
from .image import DEFAULT_TILE, MIN_TILE, image_grid, resize_for_painting, resize_max, tile_for, to_pil, to_tensor
from .models.johnson import TransformerNet
from .models.layers import InstanceNorm
from .models.rewrite import rewrite_for_gpu
from .runtime import release_free_memory, resolve_precision, torch_dtype
from .training.checkpoint import load_model

log = logging.getLogger(__name__)


Blend = dict[str, float]  # movement -> weight
STATS_GRID = 8  # tiled painting takes its statistics from collages of 8x8 crops (see _collage)
StyleNet = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]  # (images, style weights) -> images


class Stylizer:
    """A loaded movement model on a device; call it on PIL images or (N, 3, H, W) tensors.

    A joint (multi-movement) model paints any of its movements, or a blend of them:
    ``stylizer(photo, movement="baroque")`` or ``movement={"baroque": 0.5, "cubism": 0.5}``.
    """

    def __init__(self, model: nn.Module | StyleNet, config: dict[str, Any],
                 device: torch.device | str = "cpu", precision: str = "auto", compile: bool = False) -> None:
        """``precision``: ``auto`` runs a PyTorch model in bf16 where the device computes it natively
        (CPUs with AVX-512 BF16 or AMX: 4x fp32 on this project's CPU, with outputs over 40 dB PSNR
        from fp32's; CUDA GPUs with bf16 when compiled); ``fp32`` keeps full precision. An exported
        (ONNX) network always runs as exported.

        ``compile``: rewrite the network's full-resolution layers for tensor cores
        (:func:`~artstyle.models.rewrite.rewrite_for_gpu`, exact), then ``torch.compile`` it, once
        per input shape (about 30 s each on an H200): worth it for many images of one size, such as
        a video's frames. On an H200, at 1024x1024: 1.41 ms per image at batch 8 and 1.9 to 2.4 ms
        at batch 1, against 8.6 and 8.8 ms uncompiled in fp32; uncompiled bf16 was slower there
        (11 ms), hence fp32 for ``auto`` on CUDA without ``compile``.

        The weights themselves are cast (``model`` is moved and cast in place, or a rewritten copy
        of it when compiled), not autocast: inference needs no fp32 master copy, and bf16
        convolutions on channels_last tensors skip autocast's conversions.
        """
        self.device = torch.device(device)
        self.dtype = torch.float32
        if isinstance(model, nn.Module):
            resolved = resolve_precision(precision, self.device)
            if precision == "auto" and self.device.type == "cuda" and not compile:
                resolved = "fp32"
            self.dtype = torch_dtype(resolved)
            if compile and isinstance(model, TransformerNet):
                model = rewrite_for_gpu(model)  # from the float32 weights, before any cast
            model = model.to(self.device, self.dtype).eval()
            if self.dtype != torch.float32:
                model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            if compile:
                model = torch.compile(model, dynamic=False)  # type: ignore[assignment]
        self.model = model
        self.config = config
        self.movements: list[str] = list(config["model"]["movements"])
        self.conditional = bool(config["model"].get("conditional", False))

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: torch.device | str = "cpu",
                        precision: str = "auto", compile: bool = False) -> Stylizer:
        model, config = load_model(folder)
        return cls(model, config, device, precision, compile)

    def _run(self, images: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        """The network on ``images`` at this stylizer's device and precision; float32 out."""
        x = images.to(self.device, self.dtype)
        if self.dtype != torch.float32:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x, style).float()

    @property
    def name(self) -> str:
        """The model's name: its movement, or the joint network's name."""
        return str(self.config.get("name") or "+".join(self.movements))

    def style_weights(self, movement: str | Blend | None) -> torch.Tensor | None:
        """The (movements,) mixing weights for ``movement``; None for a one-movement model."""
        if isinstance(movement, str):
            movement = {movement: 1.0}
        if not self.conditional:
            if movement and set(movement) != set(self.movements):
                raise UsageError(f"this model paints only {self.movements[0]}; "
                                 f"--movement {', '.join(movement)} needs a joint model")
            return None
        if not movement:
            raise UsageError(f"this joint model paints several movements; choose with --movement, "
                             f"one of: {', '.join(self.movements)} (or a blend like "
                             f"{self.movements[0]}:0.5,{self.movements[1]}:0.5)")
        unknown = [m for m in movement if m not in self.movements]
        if unknown:
            raise UsageError(f"unknown movement {unknown[0]!r} for this model; choose from: "
                             f"{', '.join(self.movements)}")
        total = sum(movement.values())
        if any(w < 0 for w in movement.values()) or total <= 0:
            raise UsageError("blend weights must be positive, e.g. baroque:0.7,cubism:0.3")
        weights = torch.zeros(len(self.movements))
        for m, w in movement.items():
            weights[self.movements.index(m)] = w / total
        return weights.to(self.device)

    def label(self, movement: str | Blend | None = None) -> str:
        """A human label for what ``movement`` paints, e.g. ``baroque`` or ``baroque 50% + cubism 50%``."""
        if movement is None:
            return self.name
        if isinstance(movement, str):
            return movement
        total = sum(movement.values())
        if len(movement) == 1:
            return next(iter(movement))
        return " + ".join(f"{m} {round(100 * w / total)}%" for m, w in movement.items())

    @torch.inference_mode()
    def stylize_tensor(self, images: torch.Tensor, movement: str | Blend | None = None,
                       strength: float = 1.0, preserve_color: bool = False, tile: int | None = None
                       ) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1], on the input's device.

        ``strength`` in [0, 1] mixes the result with the photo (0 returns the photo);
        ``preserve_color`` keeps the photo's colours and takes only the light (luminance) of the
        result; ``tile`` (px) paints images larger than that in overlapping tiles (one at a time).
        """
        if not 0.0 <= strength <= 1.0:
            raise UsageError(f"strength {strength} is outside 0..1")
        if tile and max(images.shape[-2:]) > tile:
            out = torch.cat([self.stylize_tiled(image[None], movement, tile) for image in images]).to(images.device)
        else:
            out = self._run(images, self.style_weights(movement)).to(images.device)
        if preserve_color:
            out = transfer_luminance(out, images)
        if strength < 1.0:
            out = torch.lerp(images, out, strength)
        return out

    def __call__(self, image: Image.Image, size: int | None = None, movement: str | Blend | None = None,
                 strength: float = 1.0, preserve_color: bool = False, tile: int | None = None) -> Image.Image:
        """Stylize one PIL image; ``size`` bounds the longest side of the output (px).

        Images over ``AUTO_TILE_PIXELS`` are painted in tiles of ``DEFAULT_TILE`` px unless
        ``tile`` says otherwise (0: never tile).
        """
        image = resize_for_painting(image.convert("RGB"), size)
        if isinstance(self.model, nn.Module):  # an exported (ONNX) network cannot share statistics across tiles
            tile = tile_for(image.size, tile)
        return to_pil(self.stylize_tensor(to_tensor(image), movement, strength, preserve_color, tile))

    @torch.inference_mode()
    def stylize_tiled(self, image: torch.Tensor, movement: str | Blend | None = None, tile: int = DEFAULT_TILE,
                      overlap: int | None = None, stats_side: int = 1024) -> torch.Tensor:
        """Stylize one (1, 3, H, W) image tile by tile; the result stays on the CPU.

        Every tile is normalised with the same instance norm statistics, so tiles agree and no seam
        shows. They come from the whole image at a reduced size (longest side ``stats_side``): the
        mean of passes over four collages of full-resolution crops laid out like the downscaled
        image (see :func:`_collage`). A plain downscaled copy lacks the image's fine detail, which
        drives the first layers' statistics: on a 2048x1536 enlarged photo, tiles drifted to
        33.6 dB PSNR from a one-pass result with it, and stay at 40 dB with the collages. Tiles
        overlap by ``overlap`` px and are blended with weights that fall to zero at their inner
        edges, where a tile lacks context (default: a quarter tile, at most 128).
        """
        overlap = min(128, tile // 4) if overlap is None else overlap
        if not isinstance(self.model, nn.Module):
            raise UsageError("tiling needs a PyTorch model, not an exported one")
        if tile < MIN_TILE:
            raise UsageError(f"tile {tile} px is too small: give at least {MIN_TILE} px (or 0 to paint whole)")
        if tile <= 2 * overlap:
            raise UsageError(f"tile {tile} px must be more than twice the overlap ({overlap} px)")
        style = self.style_weights(movement)
        _, _, h, w = image.shape
        scale = min(1.0, stats_side / max(h, w))
        cell = max(8, stats_side // STATS_GRID)  # px of the collage: 128 for the default 1024
        half = cell // 2
        views = [image] if scale == 1.0 else [_collage(image, scale, cell, offset)
                                              for offset in ((0, 0), (half, 0), (0, half), (half, half))]
        norms = [m for m in self.model.modules() if isinstance(m, InstanceNorm)]
        try:
            for view in views:
                for norm in norms:
                    norm.mode = "record"
                self._run(view, style)
                release_free_memory()
            for norm in norms:
                norm.freeze()
            out = torch.zeros(1, 3, h, w)
            total = torch.zeros(1, 1, h, w)
            for top in _tile_starts(h, tile, overlap):
                for left in _tile_starts(w, tile, overlap):
                    th, tw = min(tile, h - top), min(tile, w - left)
                    patch = image[:, :, top: top + th, left: left + tw]
                    result = self._run(patch, style).cpu()
                    weight = _ramp(th, overlap, top > 0, top + th < h)[:, None] * \
                        _ramp(tw, overlap, left > 0, left + tw < w)[None, :]
                    out[:, :, top: top + th, left: left + tw] += result * weight
                    total[:, :, top: top + th, left: left + tw] += weight
        finally:
            for norm in norms:
                norm.mode, norm.stats, norm.recorded = "normal", None, []
        return out / total


def _collage(image: torch.Tensor, scale: float, cell: int, offset: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """An image of the size of ``image`` scaled by ``scale``, made of full-resolution crops: each
    block of a grid of ``cell`` px (shifted by ``offset``, px) is the crop of the same size around
    the matching point of ``image``. It keeps the image's layout and, unlike a downscaled copy, its
    fine detail."""
    _, _, h, w = image.shape
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    out = image.new_empty(1, 3, sh, sw)
    for top, bottom in _cells(sh, cell, offset[0]):
        for left, right in _cells(sw, cell, offset[1]):
            ch, cw = bottom - top, right - left
            y = int(min(max((top + ch / 2) / scale - ch / 2, 0), h - ch))
            x = int(min(max((left + cw / 2) / scale - cw / 2, 0), w - cw))
            out[:, :, top:bottom, left:right] = image[:, :, y: y + ch, x: x + cw]
    return out


def _cells(length: int, cell: int, offset: int) -> list[tuple[int, int]]:
    """(start, end) of the grid cells along one side: edges every ``cell`` px from ``offset``."""
    edges = sorted({0, *range(offset % cell or cell, length, cell), length})
    return list(zip(edges, edges[1:], strict=False))


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return [*starts, length - tile]


def _ramp(n: int, overlap: int, fade_in: bool, fade_out: bool) -> torch.Tensor:
    """1-D blending weights: 1 in the middle, rising from ~0 over ``overlap`` px at inner edges."""
    weight = torch.ones(n)
    ramp = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
    k = min(overlap, n)
    if fade_in:
        weight[:k] = torch.minimum(weight[:k], ramp[:k])
    if fade_out:
        weight[n - k:] = torch.minimum(weight[n - k:], ramp[:k].flip(0))
    return weight


def transfer_luminance(stylized: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """The luminance (BT.601 Y) of ``stylized`` with the chroma (Cb, Cr) of ``photo``, in [0, 1]."""
    def ycbcr(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r, g, b = x[:, 0], x[:, 1], x[:, 2]
        y = 0.299 * r + 0.587 * g + 0.114 * b
        return y, (b - y) * 0.564, (r - y) * 0.713

    y, _, _ = ycbcr(stylized)
    _, cb, cr = ycbcr(photo)
    r = y + 1.403 * cr
    b = y + 1.773 * cb
    g = (y - 0.299 * r - 0.114 * b) / 0.587
    return torch.stack([r, g, b], dim=1).clamp(0, 1)


def parse_movement(text: str | None) -> str | Blend | None:
    """``baroque`` -> "baroque"; ``baroque:0.5,cubism:0.5`` -> {"baroque": 0.5, "cubism": 0.5}."""
    if not text:
        return None
    if ":" not in text and "," not in text:
        return text.strip()
    blend: Blend = {}
    for part in text.split(","):
        name, _, weight = part.partition(":")
        try:
            blend[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise UsageError(f"--movement {text!r}: write a blend as baroque:0.5,cubism:0.5") from None
    return blend


def sheet_entries(stylizers: Sequence[Stylizer], movement: str | Blend | None = None
                  ) -> list[tuple[Stylizer, str | Blend | None]]:
    """What a sheet shows: each one-movement model, and each movement of a joint model (or ``movement``)."""
    entries: list[tuple[Stylizer, str | Blend | None]] = []
    for s in stylizers:
        if s.conditional and movement is None:
            entries.extend((s, m) for m in s.movements)
        else:
            entries.append((s, movement if s.conditional else None))
    return entries


def make_sheet(photos: Image.Image | Sequence[Image.Image], stylizers: Sequence[Stylizer], size: int | None = 512,
               cell: int = 384, movement: str | Blend | None = None, strength: float = 1.0,
               preserve_color: bool = False) -> Image.Image:
    """Each photo (a row) beside its stylization by each model and movement, labelled, as one image."""
    if isinstance(photos, Image.Image):
        photos = [photos]
    entries = sheet_entries(stylizers, movement)
    rows = []
    for photo in photos:
        photo = resize_max(photo, size)
        rows.append([photo, *(s(photo, movement=m, strength=strength, preserve_color=preserve_color)
                              for s, m in entries)])
    return image_grid(rows, labels=["original", *(s.label(m) for s, m in entries)], cell=cell)
