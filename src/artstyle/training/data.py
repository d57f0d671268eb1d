"""The training data: a WikiArt-style folder of paintings by movement, and photos.

``root/<movement>/*.jpg``: the folder names are the movement names (matched without regard to case,
``_``, ``-`` or spaces). Each step takes random square crops of photos, resized so their shorter side
is the training size, with random horizontal flips: from photos decoded once and kept in memory as
uint8 (:class:`PhotoCrops`, for small sets), or decoded as training goes by worker threads
(:class:`PhotoStream`, for sets of any size, in bounded memory).
"""

from __future__ import annotations

import collections
import logging
import os
import random
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import torch

from ..errors import DataError, ImageError, UsageError
from ..image import IMAGE_SUFFIXES, list_images, open_image, resize_short, to_uint8

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


def folder_key(name: str) -> str:
    """A folder name as movement names match it: without regard to case or ``_``, ``-`` and spaces,
    so ``northern renaissance`` finds WikiArt's ``Northern_Renaissance/``."""
    return "".join(c for c in name.casefold() if c not in "_- ")


def match_folders(folders: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    """``{name: folder}`` for each of ``names``, matched by :func:`folder_key` (an exact match
    first); ``UsageError`` names those that match no folder, or several."""
    by_key: dict[str, list[str]] = {}
    for folder in folders:
        by_key.setdefault(folder_key(folder), []).append(folder)
    matched, unknown = {}, []
    for name in names:
        candidates = [name] if name in folders else by_key.get(folder_key(name), [])
        if len(candidates) > 1:
            raise UsageError(f"movement {name!r} matches several folders ({', '.join(candidates)}); "
                             "give one folder's exact name")
        if candidates:
            matched[name] = candidates[0]
        else:
            unknown.append(name)
    if unknown:
        raise UsageError(f"unknown movement(s) {', '.join(repr(m) for m in sorted(unknown))}; "
                         f"choose from: {', '.join(folders)}")
    return matched


def select_movements(
    found: dict[str, list[Path]], wanted: Sequence[str] | None, min_paintings: int
) -> dict[str, list[Path]]:
    """Pick the movements to train: the ``wanted`` ones, or every one with enough paintings.

    A wanted movement is a folder's name (matched by :func:`folder_key`), or ``NAME=FOLDER+FOLDER+...``:
    one movement made of the paintings of several folders (WikiArt splits movements into such sub-styles).
    """
    if wanted:
        specs = dict(parse_movement(spec) for spec in wanted)
        folder_of = match_folders(list(found), sorted({f for folders in specs.values() for f in folders}))
        chosen = {name: sorted(p for f in folders for p in found[folder_of[f]]) for name, folders in specs.items()}
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
    names = {name: specs.get(name, (name,)) for name in chosen}
    found = sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    folder_of = match_folders(found, sorted({f for folders in names.values() for f in folders}))
    return {name: [root / folder_of[f] for f in folders] for name, folders in names.items()}


def list_photos(sources: Sequence[str | Path]) -> list[Path]:
    """The photo files of ``sources``, sorted, without duplicates: each a folder (searched
    recursively; hidden files and folders left out), a text file of paths (one per line, relative
    to the text file's folder; blank lines and lines starting with ``#`` left out) or an image."""
    found: set[Path] = set()
    for source in map(Path, sources):
        if source.is_dir():
            for folder, subfolders, files in os.walk(source):
                subfolders[:] = [d for d in subfolders if not d.startswith(".")]
                found.update(Path(folder, f) for f in files
                             if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES)
        elif source.suffix.lower() in (".txt", ".lst", ".list"):
            try:
                lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError as err:
                raise UsageError(f"{source}: cannot read this list of photos ({err.strerror or err})") from None
            found.update(source.parent / line.strip() for line in lines
                         if line.strip() and not line.lstrip().startswith("#"))
        elif source.is_file():
            found.add(source)
        else:
            raise UsageError(f"{source}: no such folder or file; give folders of photos, text files listing "
                             "photos (one path per line) or photos")
    return sorted(found)


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


def load_photo(path: Path, short_side: int) -> torch.Tensor:
    """A photo as uint8 (3, H, W), resized so its shorter side is ``short_side`` px; ``ImageError``
    if it cannot be read."""
    return to_uint8(resize_short(open_image(path), short_side))


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
            images.append(load_photo(path, short_side))
        except ImageError as err:
            skipped.add(path, str(err))
        if progress is not None:
            progress(1)
    return images


def random_crop(photo: torch.Tensor, size: int, max_scale: float, g: torch.Generator) -> torch.Tensor:
    """A random square crop of a uint8 (3, H, W) photo, ``size`` px, randomly flipped; with
    ``max_scale`` above 1, cut at a side between ``size`` and ``max_scale`` times it and resized."""
    _, h, w = photo.shape
    side = size
    if max_scale > 1:
        scale = 1 + (max_scale - 1) * float(torch.rand((), generator=g))
        side = max(size, min(h, w, round(size * scale)))
    top = int(torch.randint(h - side + 1, (1,), generator=g))
    left = int(torch.randint(w - side + 1, (1,), generator=g))
    crop = photo[:, top: top + side, left: left + side]
    if side != size:
        crop = torch.nn.functional.interpolate(crop[None].float(), size=(size, size),
                                               mode="bilinear", antialias=True, align_corners=False)
        crop = crop[0].round().clamp(0, 255).to(torch.uint8)
    if bool(torch.randint(2, (1,), generator=g)):
        crop = crop.flip(-1)
    return crop


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
            out[b] = random_crop(photo, self.size, self.max_scale, g)
        return out.to(device, non_blocking=True).float().div_(255.0)

    def start(self, step: int, steps: int) -> None:
        """Nothing to do: the generator's state, restored from a checkpoint, already says where it was."""

    def close(self) -> None:
        """Nothing to release."""


MAX_FAILED_DRAWS = 1000  # unreadable photos drawn in a row before a batch gives up: the folder is bad


class _StepBatches:
    """Item ``step``: that step's batch of crops (uint8) and the photos skipped on the way, a
    function of the seed, the rank and the step alone, so any worker can make any step's batch
    and a resumed run draws what an uninterrupted one would."""

    def __init__(self, paths: Sequence[Path], size: int, batch_size: int, seed: int, rank: int) -> None:
        self.paths, self.size, self.batch_size = list(paths), size, batch_size
        self.seed, self.rank = seed, rank

    def __getitem__(self, step: int) -> tuple[torch.Tensor | None, list[tuple[str, str]]]:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.rank) * 1_000_000_007 + step)
        out = torch.empty(self.batch_size, 3, self.size, self.size, dtype=torch.uint8)
        skipped: list[tuple[str, str]] = []
        failures = 0
        b = 0
        while b < self.batch_size:
            path = self.paths[int(torch.randint(len(self.paths), (1,), generator=g))]
            try:
                photo = load_photo(path, self.size)
            except ImageError as err:
                skipped.append((str(path), str(err)))
                failures += 1
                if failures >= MAX_FAILED_DRAWS:
                    return None, skipped
                continue
            out[b] = random_crop(photo, self.size, 1.0, g)
            b += 1
        return out, skipped


T = TypeVar("T")


def prefetched(make: Callable[[int], T], items: Iterable[int], workers: int,
               ahead: int) -> Generator[T, None, None]:
    """``make(i)`` for each of ``items``, in order, made by ``workers`` threads up to ``ahead``
    items before they are asked for (0 workers: made here, when asked for).

    Threads, not processes: Pillow and PyTorch release the GIL while they decode, resize and crop,
    so threads decode in parallel; and a process that had started DataLoader worker processes
    (forked or spawned) later crashed in an ONNX export (tests/test_evaluate.py, then
    tests/test_fastpath.py).
    """
    if workers == 0:
        yield from map(make, items)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="artstyle-decode")
    queue: collections.deque[Future[T]] = collections.deque()
    try:
        for i in items:
            queue.append(pool.submit(make, i))
            if len(queue) > ahead:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()
    finally:
        for future in queue:
            future.cancel()
        pool.shutdown(wait=True)


class PhotoStream:
    """Random square crops (with random horizontal flips) of photos decoded from their files as
    training goes, by ``workers`` threads (0: when each batch is asked for), a few batches ahead.

    Memory stays bounded whatever the number of photos. Each step's batch is a function of the
    seed, the rank and the step (see :class:`_StepBatches`), so resuming at a step draws what the
    uninterrupted run drew; under DDP each process (``rank`` of ``world``) takes its own share of
    the photos, disjoint from the others'. Unreadable photos are skipped (recorded once each in
    ``skipped``) and another is drawn. ``generator`` is for other random draws of the loop (a joint
    network's movements); its state is checkpointed.
    """

    def __init__(self, paths: Sequence[Path], size: int, batch_size: int, seed: int, skipped: Skipped,
                 workers: int = 0, rank: int = 0, world: int = 1, pin_memory: bool = False) -> None:
        shard = sorted(paths)[rank::world]
        if not shard:
            raise DataError(f"no photos for process {rank} of {world}; give at least {world} photos")
        self.batch_size, self.workers, self.pin_memory = batch_size, workers, pin_memory
        self.skipped = skipped
        self._seen: set[str] = {str(p) for p, _ in skipped.items}
        self._batches = _StepBatches(shard, size, batch_size, seed, rank)
        self.generator = torch.Generator().manual_seed(seed + 1000 * rank)
        self._loader: Generator[tuple[torch.Tensor | None, list[tuple[str, str]]], None, None] | None = None

    def start(self, step: int, steps: int) -> None:
        """Begin with the batch of ``step`` (0 for a new run), for the steps up to ``steps``."""
        self.close()
        self._loader = prefetched(self._batches.__getitem__, range(step, max(step, steps)), self.workers,
                                  ahead=2 * self.workers + 2)

    def batch(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The next step's float32 (B, 3, size, size) batch in [0, 1] on ``device``."""
        if batch_size != self.batch_size:
            raise ValueError(f"this stream makes batches of {self.batch_size}, not {batch_size}")
        if self._loader is None:
            self.start(0, 2**62)
        assert self._loader is not None
        crops, skipped = next(self._loader)
        if self.pin_memory and crops is not None:
            crops = crops.pin_memory()  # its copy to the GPU does not wait for the GPU's queued work
        for path, reason in skipped:
            if path not in self._seen:
                self._seen.add(path)
                self.skipped.add(Path(path), reason)
        if crops is None:
            raise DataError(f"{MAX_FAILED_DRAWS} photos in a row could not be read; check the photos "
                            f"({len(self.skipped)} unreadable so far)")
        return crops.to(device, non_blocking=True).float().div_(255.0)

    def close(self) -> None:
        """Stop the decoding threads."""
        if self._loader is not None:
            self._loader.close()  # its `finally` cancels what is queued and waits for the threads
        self._loader = None
