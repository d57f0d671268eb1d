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


def select_movements(
    found: dict[str, list[Path]], wanted: Sequence[str] | None, min_paintings: int
) -> dict[str, list[Path]]:
    """Pick the movements to train: the ``wanted`` ones, or every one with enough paintings."""
    if wanted:
        unknown = [m for m in wanted if m not in found]
        if unknown:
            raise UsageError(
                f"unknown movement(s) {', '.join(repr(m) for m in unknown)}; "
                f"choose from: {', '.join(found)}"
            )
        empty = [m for m in wanted if not found[m]]
        if empty:
            raise DataError(f"movement(s) {', '.join(empty)} have no image files")
        return {m: found[m] for m in wanted}
    chosen = {m: paths for m, paths in found.items() if len(paths) >= min_paintings}
    for m, paths in found.items():
        if m not in chosen:
            log.info("skipping movement %s: %d paintings, fewer than --min-paintings %d",
                     m, len(paths), min_paintings)
    if not chosen:
        raise DataError(f"no movement has at least {min_paintings} paintings; "
                        "add paintings or lower --min-paintings")
    return chosen


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

    Sampling is driven by a ``torch.Generator`` whose state is saved in checkpoints, so a resumed
    run draws exactly the batches the uninterrupted run would have drawn.
    """

    def __init__(self, photos: Sequence[torch.Tensor], size: int, seed: int) -> None:
        if not photos:
            raise DataError("no readable training photos")
        self.photos = list(photos)
        self.size = size
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
            top = int(torch.randint(h - self.size + 1, (1,), generator=g))
            left = int(torch.randint(w - self.size + 1, (1,), generator=g))
            crop = photo[:, top: top + self.size, left: left + self.size]
            if bool(torch.randint(2, (1,), generator=g)):
                crop = crop.flip(-1)
            out[b] = crop
        return out.to(device, non_blocking=True).float().div_(255.0)
