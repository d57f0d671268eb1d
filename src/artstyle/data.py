"""The training data: a WikiArt-style folder of paintings by movement, and a folder of photos.

``root/<movement>/*.jpg``: the folder names are the movement names. Photos are decoded once,
resized so their shorter side is the training size, and kept in memory as uint8; each step takes
random square crops with random horizontal flips.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import DataError, ImageError, UsageError
from .image import list_images, open_image, resize_short, to_uint8

log = logging.getLogger(__name__)


@dataclass
class Skipped:
    """Files that could not be used, with the reason for each."""

    items: list[tuple[Path, str]] = field(default_factory=list)

    def add(self, path: Path, reason: str) -> None:
        self.items.append((path, reason))
        log.warning("skipped %s", reason)

    def __len__(self) -> int:
        return len(self.items)


def scan_movements(root: str | Path) -> dict[str, list[Path]]:
    """``{movement: [image paths]}`` for every sub-folder of ``root`` (sorted by name).

    Only file names are checked here; the images are read (and bad ones skipped) when used.
    """
    root = Path(root)
    if not root.exists():
        raise UsageError(f"{root}: no such folder; give the folder that holds one sub-folder per movement")
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder; give the folder that holds one sub-folder per movement")
    movements = {
        d.name: list_images(d)
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }
    if not movements:
        raise DataError(f"{root}: no movement sub-folders; expected {root}/<movement>/*.jpg (WikiArt layout)")
    return movements


def parse_movement(spec: str) -> tuple[str, tuple[str, ...]]:
    """``"modern_art=abstract+fauvism"`` -> ``("modern_art", ("abstract", "fauvism"))``; a plain
    name is a movement of one folder of the same name."""
    name, sep, folders = spec.partition("=")
    name = name.strip()
    parts = tuple(f.strip() for f in folders.split("+")) if sep else (name,)
    if not name or not all(parts):
        raise UsageError(f"cannot read the movement {spec!r}; write NAME or NAME=FOLDER+FOLDER+...")
    return name, parts


def select_movements(
    found: dict[str, list[Path]], wanted: Sequence[str] | None, min_paintings: int
) -> dict[str, list[Path]]:
    """Pick the movements to train: the ``wanted`` ones, or every one with enough paintings.

    A wanted movement is a folder's name, or ``NAME=FOLDER+FOLDER+...``: one movement made of the
    paintings of several folders (WikiArt splits movements into such sub-styles).
    """
    if wanted:
        specs = dict(parse_movement(spec) for spec in wanted)
        unknown = sorted({f for folders in specs.values() for f in folders if f not in found})
        if unknown:
            raise UsageError(
                f"unknown movement(s) {', '.join(repr(m) for m in unknown)}; "
                f"choose from: {', '.join(found)}"
            )
        chosen = {name: sorted(p for f in folders for p in found[f]) for name, folders in specs.items()}
        empty = [m for m, paths in chosen.items() if not paths]
        if empty:
            raise DataError(f"movement(s) {', '.join(empty)} have no image files")
        return chosen
    chosen = {m: paths for m, paths in found.items() if len(paths) >= min_paintings}
    for m, paths in found.items():
        if m not in chosen:
            log.info("skipping movement %s: %d paintings, fewer than --min-paintings %d",
                     m, len(paths), min_paintings)
    if not chosen:
        raise DataError(f"no movement has at least {min_paintings} paintings; "
                        "add paintings or lower --min-paintings")
    return chosen


def movement_folders(root: Path, wanted: Sequence[str] | None, chosen: Sequence[str]) -> dict[str, list[Path]]:
    """The folders each chosen movement is made of (see ``select_movements``)."""
    specs = dict(parse_movement(spec) for spec in wanted or ())
    return {name: [root / f for f in specs.get(name, (name,))] for name in chosen}


def sample_paths(paths: Sequence[Path], limit: int, seed: int) -> list[Path]:
    """Up to ``limit`` paths drawn at random with ``seed`` (not the first ones on disk), in sorted order."""
    paths = sorted(paths)
    if len(paths) <= limit:
        return paths
    return sorted(random.Random(seed).sample(paths, limit))


def split_photos(paths: Sequence[Path], holdout: int, seed: int) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out preview photos), chosen at random with ``seed``."""
    paths = sorted(paths)
    holdout = min(holdout, max(0, len(paths) - 1))
    rng = random.Random(seed)
    preview = sorted(rng.sample(paths, holdout))
    return [p for p in paths if p not in set(preview)], preview


def load_resized(
    paths: Sequence[Path],
    short_side: int,
    skipped: Skipped,
    progress: Callable[[int], object] | None = None,
) -> list[torch.Tensor]:
    """Decode images once, resized so the shorter side is ``short_side``, as uint8 (3, H, W).

    Unreadable images are skipped and recorded in ``skipped``.
    """
    images = []
    for path in paths:
        try:
            images.append(to_uint8(resize_short(open_image(path), short_side)))
        except ImageError as err:
            skipped.add(path, str(err))
        if progress is not None:
            progress(1)
    return images


class PhotoCrops:
    """Random square crops (with random horizontal flips) of in-memory uint8 photos.

    With ``max_scale`` above 1, each crop's side is drawn between ``size`` and ``max_scale`` times
    it (within the picture) and resized to ``size``: crops at several scales, as the movement
    critic sees paintings. Sampling is driven by a ``torch.Generator`` whose state is saved in
    checkpoints, so a resumed run draws exactly the batches the uninterrupted run would have drawn.
    """

    def __init__(self, photos: Sequence[torch.Tensor], size: int, seed: int, max_scale: float = 1.0) -> None:
        if not photos:
            raise DataError("no readable training photos")
        self.photos = list(photos)
        self.size = size
        self.max_scale = max_scale
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """A float32 (B, 3, size, size) batch in [0, 1] on ``device``.

        Crops are cut on the CPU and cross to the device as uint8, a quarter of the bytes of
        float32; the conversion runs there. For a GPU they are cut into pinned memory, whose copy
        does not wait for the GPU's queued work (a copy from ordinary memory does).
        """
        g = self.generator
        device = torch.device(device)
        out = torch.empty(batch_size, 3, self.size, self.size, dtype=torch.uint8, pin_memory=device.type == "cuda")
        for b in range(batch_size):
            photo = self.photos[int(torch.randint(len(self.photos), (1,), generator=g))]
            _, h, w = photo.shape
            side = self.size
            if self.max_scale > 1:
                scale = 1 + (self.max_scale - 1) * float(torch.rand((), generator=g))
                side = max(self.size, min(h, w, round(self.size * scale)))
            top = int(torch.randint(h - side + 1, (1,), generator=g))
            left = int(torch.randint(w - side + 1, (1,), generator=g))
            crop = photo[:, top: top + side, left: left + side]
            if side != self.size:
                crop = torch.nn.functional.interpolate(crop[None].float(), size=(self.size, self.size),
                                                       mode="bilinear", antialias=True, align_corners=False)
                crop = crop[0].round().clamp(0, 255).to(torch.uint8)
            if bool(torch.randint(2, (1,), generator=g)):
                crop = crop.flip(-1)
            out[b] = crop
        return out.to(device, non_blocking=True).float().div_(255.0)
