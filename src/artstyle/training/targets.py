"""A movement's style target: per VGG layer, the mean Gram matrix over many of its paintings, and a
pool of feature vectors sampled evenly from all of them (for the sliced style loss).

Paintings are read one at a time (never all in memory). When a movement has at least
``min_views`` paintings, each counts once, resized so its shorter side is ``style_size`` (very
wide ones centre-cropped to twice that). Small sets (cubism and expressionism have ten paintings
here) would teach one picture's layout rather than a movement's brushwork and palette, so each of
their paintings contributes several views instead: random square crops of ``style_size`` px at
random scales (0.75x to 1.5x), drawn with a fixed seed. The Grams of all views are averaged;
each view gives the pool the same number of feature vectors, at random positions.

The result is cached on disk under a key made of the paintings' contents, the layers, the size,
the views, the pool size and the VGG weights, and reused by later runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ..config import DataConfig, LossConfig
from ..errors import ArtstyleError, DataError, ImageError, UsageError
from ..image import atomic_write, open_image, resize_short, to_tensor
from .data import Skipped, prefetched, sample_paths
from .losses import gram_matrix
from .vgg import VGG19Encoder

log = logging.getLogger(__name__)

TARGET_VERSION = 2  # bump when the way targets are computed changes


@dataclass(frozen=True)
class StyleTarget:
    grams: dict[str, torch.Tensor]  # layer -> (C, C) float32
    pools: dict[str, torch.Tensor]  # layer -> (samples, C) float32: feature vectors of the paintings
    paintings: int  # how many paintings were averaged
    key: str  # the cache key


def target_key(paths: Sequence[Path], layers: Sequence[str], style_size: int, weights_id: str,
               views: int = 1, seed: int = 0, samples: int = 0, digests: FileDigests | None = None) -> str:
    """A hash of everything the target depends on: file contents, layers, size, views, pool and weights.

    ``digests`` remembers each file's content hash by its size and modification time, so a run
    whose paintings did not change reads none of them to find its cached target.
    """
    h = hashlib.sha256()
    h.update(json.dumps([TARGET_VERSION, list(layers), style_size, weights_id, views,
                         seed if views > 1 else 0, samples]).encode())
    memo = digests or FileDigests(None)
    for path in sorted(paths):
        h.update(bytes.fromhex(memo.digest(path)))
    memo.save()
    return h.hexdigest()[:32]


class FileDigests:
    """SHA-256 of files' contents, remembered in ``<cache>/digests.json`` by path, size and
    modification time (a file whose size or time changed is hashed again)."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.path = cache_dir / "digests.json" if cache_dir else None
        self.known: dict[str, list[Any]] = {}
        self.changed = False
        if self.path is not None and self.path.is_file():
            try:
                self.known = json.loads(self.path.read_text())
            except (OSError, ValueError) as err:  # a damaged memo costs only time
                log.debug("ignoring %s: %s", self.path, err)

    def digest(self, path: Path) -> str:
        stat = path.stat()
        name = str(path.resolve())
        entry = self.known.get(name)
        if isinstance(entry, list) and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
            return str(entry[2])
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        self.known[name] = [stat.st_size, stat.st_mtime_ns, h.hexdigest()]
        self.changed = True
        return h.hexdigest()

    def save(self) -> None:
        """Write the memo if it grew; a cache that cannot be written is no reason to fail."""
        if self.path is None or not self.changed:
            return
        text = json.dumps(self.known)
        try:
            atomic_write(self.path, lambda f: f.write(text.encode()))
            self.changed = False
        except ArtstyleError as err:
            log.debug("could not remember file digests: %s", err)


def prepare_painting(image: Image.Image, style_size: int) -> Image.Image:
    """Shorter side to ``style_size``; a long side over twice that is centre-cropped."""
    image = resize_short(image, style_size)
    limit = 2 * style_size
    if max(image.size) > limit:
        left = (image.width - min(image.width, limit)) // 2
        top = (image.height - min(image.height, limit)) // 2
        image = image.crop((left, top, left + min(image.width, limit), top + min(image.height, limit)))
    return image


def views_per_painting(paintings: int, min_views: int) -> int:
    """How many views each painting contributes so that at least ``min_views`` are averaged."""
    return max(1, math.ceil(min_views / max(1, paintings)))


def painting_views(image: Image.Image, style_size: int, count: int, rng: random.Random) -> list[Image.Image]:
    """``count`` views of a painting: the whole of it when 1, else random crops at random scales."""
    if count == 1:
        return [prepare_painting(image, style_size)]
    views = []
    for _ in range(count):
        scaled = resize_short(image, max(16, round(style_size * rng.uniform(0.75, 1.5))))
        side = min(style_size, *scaled.size)
        left, top = rng.randint(0, scaled.width - side), rng.randint(0, scaled.height - side)
        views.append(scaled.crop((left, top, left + side, top + side)))
    return views


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
    min_views: int = 1,
    seed: int = 0,
    samples: int = 4096,
    workers: int = 0,
    batch: int = 1,
) -> StyleTarget:
    """The target over ``paths`` (already sampled): mean Grams and a pool of ``samples`` feature
    vectors per layer; from the cache when possible. ``workers`` threads decode the paintings and
    cut their views while the loss network runs (0: all in turn, on this thread); the loss network
    takes up to ``batch`` views of one shape at once (a painting's crops, or paintings of one size),
    which keeps a GPU busy, and gives the target one pass at a time would, to rounding."""
    views = views_per_painting(len(paths), min_views)
    key = target_key(paths, layers, style_size, vgg.weights_id, views, seed, samples, FileDigests(cache_dir))
    cache_file = cache_dir / "targets" / f"{key}.safetensors" if cache_dir else None
    if cache_file is not None and cache_file.exists():
        cached = _load(cache_file, layers)
        if cached is not None:
            log.info("style target from cache %s", cache_file)
            if progress is not None:
                progress(len(paths))
            return StyleTarget(cached[0], cached[1], cached[2], key)
    sums: dict[str, torch.Tensor] = {}
    pools: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    per_view = math.ceil(samples / max(1, len(paths) * views))
    count = seen = 0
    decoded = prefetched(lambda i: _painting_views(paths[i], style_size, views, seed), range(len(paths)), workers,
                         ahead=2 * workers)
    pending: list[tuple[torch.Tensor, random.Random]] = []  # views of one shape, waiting for the loss network

    def flush() -> None:
        """The loss network on the pending views at once, then their Grams and samples in order."""
        nonlocal seen
        if not pending:
            return
        with torch.no_grad(), autocast():
            features = vgg(torch.cat([view for view, _ in pending]).to(device), layers)
        for name in layers:
            grams = gram_matrix(features[name]).double().cpu()
            sums[name] = sums[name] + grams.sum(0) if name in sums else grams.sum(0)
        for i, (_, rng) in enumerate(pending):  # view by view, layer by layer: the order one pass at a time draws in
            for name in layers:
                pools[name].append(sample_vectors(features[name][i], per_view, rng))
        seen += len(pending)
        pending.clear()

    for path, (tensors, rng_state, error) in zip(paths, decoded, strict=True):
        if error is not None:
            skipped.add(path, error)
        else:
            rng = random.Random()
            rng.setstate(rng_state)  # where cutting the views left it: the samples below draw on from there
            for view in tensors:
                if pending and (len(pending) == batch or pending[0][0].shape != view.shape):
                    flush()
                pending.append((view, rng))
            count += 1
        if progress is not None:
            progress(1)
    flush()
    if count == 0:
        raise DataError(f"none of the {len(paths)} paintings could be read; see the skipped files above")
    grams = {name: (s / seen).float() for name, s in sums.items()}
    pool_rng = torch.Generator().manual_seed(seed)
    pooled = {}
    for name, parts in pools.items():
        vectors = torch.cat(parts)  # short of `samples` only when paintings were skipped: draw again then
        order = (torch.randperm(len(vectors), generator=pool_rng)[:samples] if len(vectors) >= samples
                 else torch.randint(len(vectors), (samples,), generator=pool_rng))
        pooled[name] = vectors[order].half().float()  # as the cache stores it: cached and fresh runs train alike
    if cache_file is not None:
        _save(cache_file, grams, pooled, count)
    return StyleTarget(grams, pooled, count, key)


def _painting_views(path: Path, style_size: int, views: int, seed: int) -> tuple[list[torch.Tensor], Any, str | None]:
    """The views of a painting as (1, 3, H, W) tensors, the state of its random generator after
    cutting them, and None; or ([], None, the reason) if it cannot be read."""
    try:
        image = open_image(path)
    except ImageError as err:
        return [], None, str(err)
    rng = random.Random(f"{seed}:{path.name}")
    tensors = [to_tensor(view) for view in painting_views(image, style_size, views, rng)]
    return tensors, rng.getstate(), None


def sample_vectors(features: torch.Tensor, count: int, rng: random.Random) -> torch.Tensor:
    """``count`` feature vectors (count, C), float32 on the CPU, at random positions of (C, H, W) features."""
    c, h, w = features.shape
    flat = features.reshape(c, h * w)
    index = torch.tensor([rng.randrange(h * w) for _ in range(count)], device=features.device)
    return flat[:, index].T.float().cpu()


def movement_target(
    paths: Sequence[Path],
    vgg: VGG19Encoder,
    loss: LossConfig,
    data: DataConfig,
    seed: int,
    device: torch.device,
    cache_dir: Path | None,
    skipped: Skipped,
    autocast: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
    progress: Callable[[int], object] | None = None,
    workers: int = 0,
) -> tuple[StyleTarget, list[Path]]:
    """A movement's target exactly as training builds it, from all its painting files: up to
    ``data.max_paintings`` drawn with ``seed``, at ``data.style_size``, with ``data.style_views``.
    Returns the target and the paintings drawn."""
    chosen = sample_paths(paths, data.max_paintings, seed)
    target = style_target(chosen, vgg, loss.style_layers, data.style_size, device, cache_dir, skipped,
                          autocast, progress, min_views=data.style_views, seed=seed, samples=data.style_samples,
                          workers=workers, batch=8 if device.type == "cuda" else 1)  # a CPU gains nothing from it
    return target, chosen


def contrasted(own: StyleTarget, others: Sequence[StyleTarget], weight: float) -> StyleTarget:
    """``own`` pushed away from the other movements' mean Grams (averaged, each movement counting
    once): ``own + weight * (own - theirs)`` per layer, floored at 0 as a Gram of ReLU features is.
    What the movement shares with the others then weighs less in the target, and what sets it apart
    more. The feature pools (the sliced loss's) stay ``own``'s."""
    if not others:
        raise UsageError("--contrast needs at least one other movement to push the style away from; "
                         "name some with --contrast-with")
    grams = {}
    for layer, gram in own.grams.items():
        theirs = torch.stack([other.grams[layer] for other in others]).mean(0)
        grams[layer] = (gram + weight * (gram - theirs)).clamp(min=0)
    key = hashlib.sha256(json.dumps([own.key, sorted(o.key for o in others), weight]).encode()).hexdigest()[:32]
    return StyleTarget(grams, own.pools, own.paintings, key)


def _save(path: Path, grams: dict[str, torch.Tensor], pools: dict[str, torch.Tensor], count: int) -> None:
    from safetensors.torch import save

    tensors = {**{k: v.contiguous() for k, v in grams.items()},
               **{f"pool/{k}": v.half().contiguous() for k, v in pools.items()}}
    data = save(tensors, metadata={"paintings": str(count)})
    try:
        atomic_write(path, lambda f: f.write(data))
    except Exception as err:  # a cache that cannot be written only costs time later
        log.warning("could not cache the style target at %s: %s", path, err)


def _load(path: Path, layers: Sequence[str]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int] | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            count = int((f.metadata() or {}).get("paintings", "0"))
            grams = {name: f.get_tensor(name) for name in layers}
            pools = {name: f.get_tensor(f"pool/{name}").float() for name in layers}
        return grams, pools, count
    except Exception as err:
        log.warning("ignoring unreadable cached style target %s: %s", path, err)
        return None
