"""A movement's style target: the mean Gram matrix per VGG layer over many of its paintings.

Paintings are read one at a time (never all in memory), each resized so its shorter side is
``style_size`` (very wide ones centre-cropped to twice that), and their Grams averaged. The result
is cached on disk under a key made of the paintings' contents, the layers, the size and the VGG
weights, and reused by later runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from .data import Skipped
from .errors import DataError, ImageError
from .image import atomic_write, open_image, resize_short, to_tensor
from .losses import gram_matrix
from .vgg import VGG19Encoder

log = logging.getLogger(__name__)

TARGET_VERSION = 1  # bump when the way targets are computed changes


@dataclass(frozen=True)
class StyleTarget:
    grams: dict[str, torch.Tensor]  # layer -> (C, C) float32
    paintings: int  # how many paintings were averaged
    key: str  # the cache key


def default_cache_dir() -> Path:
    """``$ARTSTYLE_CACHE`` or ``~/.cache/artstyle``."""
    env = os.environ.get("ARTSTYLE_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "artstyle"


def target_key(paths: Sequence[Path], layers: Sequence[str], style_size: int, weights_id: str) -> str:
    """A hash of everything the target depends on: file contents, layers, size and weights."""
    h = hashlib.sha256()
    h.update(json.dumps([TARGET_VERSION, list(layers), style_size, weights_id]).encode())
    for path in sorted(paths):
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:32]


def prepare_painting(image: Image.Image, style_size: int) -> Image.Image:
    """Shorter side to ``style_size``; a long side over twice that is centre-cropped."""
    image = resize_short(image, style_size)
    limit = 2 * style_size
    if max(image.size) > limit:
        left = (image.width - min(image.width, limit)) // 2
        top = (image.height - min(image.height, limit)) // 2
        image = image.crop((left, top, left + min(image.width, limit), top + min(image.height, limit)))
    return image


def style_target(
    paths: Sequence[Path],
    vgg: VGG19Encoder,
    layers: Sequence[str],
    style_size: int,
    device: torch.device,
    cache_dir: Path | None,
    skipped: Skipped,
    autocast: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
    progress: Callable[[int], object] | None = None,
) -> StyleTarget:
    """The mean Gram target over ``paths`` (already sampled), from the cache when possible."""
    key = target_key(paths, layers, style_size, vgg.weights_id)
    cache_file = cache_dir / "targets" / f"{key}.safetensors" if cache_dir else None
    if cache_file is not None and cache_file.exists():
        cached = _load(cache_file, layers)
        if cached is not None:
            log.info("style target from cache %s", cache_file)
            if progress is not None:
                progress(len(paths))
            return StyleTarget(cached[0], cached[1], key)
    sums: dict[str, torch.Tensor] = {}
    count = 0
    for path in paths:
        try:
            image = prepare_painting(open_image(path), style_size)
        except ImageError as err:
            skipped.add(path, str(err))
        else:
            with torch.no_grad(), autocast():
                features = vgg(to_tensor(image).to(device), layers)
            for name in layers:
                g = gram_matrix(features[name])[0].double().cpu()
                sums[name] = sums[name] + g if name in sums else g
            count += 1
        if progress is not None:
            progress(1)
    if count == 0:
        raise DataError(f"none of the {len(paths)} paintings could be read; see the skipped files above")
    grams = {name: (s / count).float() for name, s in sums.items()}
    if cache_file is not None:
        _save(cache_file, grams, count)
    return StyleTarget(grams, count, key)


def _save(path: Path, grams: dict[str, torch.Tensor], count: int) -> None:
    from safetensors.torch import save

    data = save({k: v.contiguous() for k, v in grams.items()}, metadata={"paintings": str(count)})
    try:
        atomic_write(path, lambda f: f.write(data))
    except Exception as err:  # a cache that cannot be written only costs time later
        log.warning("could not cache the style target at %s: %s", path, err)


def _load(path: Path, layers: Sequence[str]) -> tuple[dict[str, torch.Tensor], int] | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            count = int((f.metadata() or {}).get("paintings", "0"))
            grams = {name: f.get_tensor(name) for name in layers}
        return grams, count
    except Exception as err:
        log.warning("ignoring unreadable cached style target %s: %s", path, err)
        return None
