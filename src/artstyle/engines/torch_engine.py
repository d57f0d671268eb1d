"""The PyTorch engine: any device, joint models and blends, strength, colour keeping, and tiles for
images too large to paint whole. :class:`TensorStylizer` is what every tensor-based engine shares
(the ONNX Runtime engine builds on it); :class:`TorchStylizer` runs the network in PyTorch.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from ..errors import UsageError
from ..image import DEFAULT_TILE, MIN_TILE, resize_for_painting, tile_for, to_pil, to_tensor
from ..model_folder import ModelFolder
from ..models.johnson import TransformerNet
from ..models.layers import InstanceNorm
from ..models.rewrite import rewrite_for_gpu
from ..runtime import release_free_memory, resolve_device, resolve_precision, torch_dtype
from .base import Movement, StylizerBase
from .tiles import STATS_GRID, collage, ramp, tile_starts

log = logging.getLogger(__name__)


class TensorStylizer(StylizerBase):
    """A stylizer whose network maps (N, 3, H, W) float tensors to tensors; subclasses give ``_run``."""

    device = torch.device("cpu")

    def _run(self, images: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        """The network on ``images`` (on this stylizer's device); float32 out."""
        raise NotImplementedError

    def style_weights(self, movement: Movement) -> torch.Tensor | None:
        """The (movements,) mixing weights for ``movement`` on this stylizer's device; None for a
        one-movement model."""
        weights = self.movement_weights(movement)
        return None if weights is None else torch.tensor(weights, device=self.device)

    def painted_whole(self, image_size: tuple[int, int], tile: int | None) -> int | None:
        """The tile size to paint an image of ``image_size`` with (None: whole)."""
        return None

    @torch.inference_mode()
    def stylize_tensor(self, images: torch.Tensor, movement: Movement = None, strength: float = 1.0,
                       preserve_color: bool = False, tile: int | None = None) -> torch.Tensor:
        if not 0.0 <= strength <= 1.0:
            raise UsageError(f"strength {strength} is outside 0..1")
        self._used.add(self.engine)
        if tile and max(images.shape[-2:]) > tile:
            out = torch.cat([self.stylize_tiled(image[None], movement, tile) for image in images]).to(images.device)
        else:
            out = self._run(images, self.style_weights(movement)).to(images.device)
        if preserve_color:
            out = transfer_luminance(out, images)
        if strength < 1.0:
            out = torch.lerp(images, out, strength)
        return out

    def stylize_tiled(self, image: torch.Tensor, movement: Movement = None, tile: int = DEFAULT_TILE,
                      overlap: int | None = None, stats_side: int = 1024) -> torch.Tensor:
        raise UsageError(f"tiling needs a PyTorch model, not the {self.engine} engine")

    def __call__(self, image: Image.Image, size: int | None = None, movement: Movement = None,
                 strength: float = 1.0, preserve_color: bool = False, tile: int | None = None) -> Image.Image:
        image = resize_for_painting(image.convert("RGB"), size)
        tile = self.painted_whole(image.size, tile)
        return to_pil(self.stylize_tensor(to_tensor(image), movement, strength, preserve_color, tile))


class TorchStylizer(TensorStylizer):
    """A model folder's network in PyTorch, on a device.

    Args:
        model: the model folder.
        network: its network, if already built (default: loaded from the folder).
        device: where it runs (``auto``: CUDA, then Apple MPS, then the CPU).
        precision: ``auto`` runs in bf16 where the device computes it natively (CPUs with AVX-512
            BF16 or AMX; CUDA GPUs when compiled), else fp32; or fp32, bf16, fp16. The weights
            themselves are cast, not autocast: inference needs no fp32 master copy, and bf16
            convolutions on channels_last tensors skip autocast's conversions.
        compile: rewrite the full-resolution layers for tensor cores (exact; see
            :func:`~artstyle.models.rewrite.rewrite_for_gpu`), then ``torch.compile`` the network once
            per input shape: it pays for many images of one size, such as a video's frames on a GPU.
    """

    engine = "torch"

    def __init__(self, model: ModelFolder, network: nn.Module | None = None, device: torch.device | str = "auto",
                 precision: str = "auto", compile: bool = False) -> None:
        super().__init__(model)
        self.device = resolve_device(device) if isinstance(device, str) else device
        network = network if network is not None else model.load_network()
        resolved = resolve_precision(precision, self.device)
        if precision == "auto" and self.device.type == "cuda" and not compile:
            resolved = "fp32"  # uncompiled bf16 is slower than fp32 there (benchmarks/README.md)
        self.precision = resolved
        self.dtype = torch_dtype(resolved)
        if compile and isinstance(network, TransformerNet):
            network = rewrite_for_gpu(network)  # from the float32 weights, before any cast
        network = network.to(self.device, self.dtype).eval()
        if self.dtype != torch.float32:
            network = network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if compile:
            network = torch.compile(network, dynamic=False)  # type: ignore[assignment]
        self.network = network

    @classmethod
    def from_pretrained(cls, ref: str | Path | ModelFolder, device: torch.device | str = "auto",
                        precision: str = "auto", compile: bool = False) -> TorchStylizer:
        """A TorchStylizer for a shipped model's name or a model folder."""
        model = ref if isinstance(ref, ModelFolder) else ModelFolder.from_pretrained(ref)
        return cls(model, device=device, precision=precision, compile=compile)

    def _run(self, images: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        x = images.to(self.device, self.dtype)
        if self.dtype != torch.float32:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.network(x, style).float()

    def painted_whole(self, image_size: tuple[int, int], tile: int | None) -> int | None:
        return tile_for(image_size, tile)

    def check(self, movement: Movement = None, strength: float = 1.0, preserve_color: bool = False,
              tile: int | None = None) -> None:
        super().check(movement, strength, preserve_color, tile)
        if tile and tile < MIN_TILE:
            raise UsageError(f"tile {tile} px is too small: give at least {MIN_TILE} px (or 0 to paint whole)")

    @torch.inference_mode()
    def stylize_tiled(self, image: torch.Tensor, movement: Movement = None, tile: int = DEFAULT_TILE,
                      overlap: int | None = None, stats_side: int = 1024) -> torch.Tensor:
        """Stylize one (1, 3, H, W) image tile by tile; the result stays on the CPU.

        Every tile is normalised with the same instance norm statistics, so tiles agree and no seam
        shows. They come from the whole image at a reduced size (longest side ``stats_side``): the
        mean of passes over four collages of full-resolution crops laid out like the downscaled
        image (see :func:`~artstyle.engines.tiles.collage`). A plain downscaled copy lacks the
        image's fine detail, which drives the first layers' statistics. Tiles overlap by
        ``overlap`` px and are blended with weights that fall to zero at their inner edges, where a
        tile lacks context (default: a quarter tile, at most 128).
        """
        overlap = min(128, tile // 4) if overlap is None else overlap
        if tile < MIN_TILE:
            raise UsageError(f"tile {tile} px is too small: give at least {MIN_TILE} px (or 0 to paint whole)")
        if tile <= 2 * overlap:
            raise UsageError(f"tile {tile} px must be more than twice the overlap ({overlap} px)")
        style = self.style_weights(movement)
        _, _, h, w = image.shape
        scale = min(1.0, stats_side / max(h, w))
        cell = max(8, stats_side // STATS_GRID)  # px of the collage: 128 for the default 1024
        half = cell // 2
        views = [image] if scale == 1.0 else [collage(image, scale, cell, offset)
                                              for offset in ((0, 0), (half, 0), (0, half), (half, half))]
        norms = [m for m in self.network.modules() if isinstance(m, InstanceNorm)]
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
            for top in tile_starts(h, tile, overlap):
                for left in tile_starts(w, tile, overlap):
                    th, tw = min(tile, h - top), min(tile, w - left)
                    patch = image[:, :, top: top + th, left: left + tw]
                    result = self._run(patch, style).cpu()
                    weight = ramp(th, overlap, top > 0, top + th < h)[:, None] * \
                        ramp(tw, overlap, left > 0, left + tw < w)[None, :]
                    out[:, :, top: top + th, left: left + tw] += result * weight
                    total[:, :, top: top + th, left: left + tw] += weight
        finally:
            for norm in norms:
                norm.mode, norm.stats, norm.recorded = "normal", None, []
        return out / total


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
