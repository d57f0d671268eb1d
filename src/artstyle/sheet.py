"""A sheet: photos beside their stylizations by several models, labelled, as one picture."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from .engines.base import Movement, Stylizer
from .image import image_grid, resize_max


def sheet_entries(stylizers: Sequence[Stylizer], movement: Movement = None
                  ) -> list[tuple[Stylizer, Movement]]:
    """What a sheet shows: each one-movement model, and each movement of a joint model (or ``movement``)."""
    entries: list[tuple[Stylizer, Movement]] = []
    for s in stylizers:
        if s.conditional and movement is None:
            entries.extend((s, m) for m in s.movements)
        else:
            entries.append((s, movement if s.conditional else None))
    return entries


def make_sheet(photos: Image.Image | Sequence[Image.Image], stylizers: Sequence[Stylizer], size: int | None = 512,
               cell: int = 384, movement: Movement = None, strength: float = 1.0,
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
