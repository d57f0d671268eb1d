"""Generated images, for the demo and the tests: painting-like textures and photo-like scenes.

Nothing here needs data on disk; every image comes from a seeded random generator.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

PALETTES = {
    "ember": [(182, 44, 28), (236, 150, 40), (60, 20, 16), (250, 220, 120)],
    "lagoon": [(18, 82, 140), (70, 170, 190), (230, 240, 220), (20, 40, 60)],
}


def painting(palette: str, size: int = 256, seed: int = 0) -> Image.Image:
    """A 'painting': a field of thick, slanted brush strokes in one palette."""
    rng = random.Random(seed)
    colours = PALETTES[palette]
    im = Image.new("RGB", (size, size), colours[0])
    draw = ImageDraw.Draw(im)
    for _ in range(size * 2):
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        length, angle = rng.uniform(size / 24, size / 8), rng.choice((1, -1)) * rng.uniform(0.4, 1.0)
        width = rng.randint(max(2, size // 64), max(3, size // 24))
        draw.line((x, y, x + length, y + angle * length), fill=rng.choice(colours), width=width)
    return im.filter(ImageFilter.GaussianBlur(0.8))


def photo(size: int = 256, seed: int = 0) -> Image.Image:
    """A 'photo': a sky-to-ground gradient with a few solid shapes in natural colours."""
    rng = random.Random(seed)
    im = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(im)
    sky = (rng.randint(90, 160), rng.randint(150, 200), rng.randint(200, 255))
    ground = (rng.randint(40, 110), rng.randint(90, 140), rng.randint(30, 70))
    horizon = rng.randint(size // 3, 2 * size // 3)
    for row in range(size):
        top = row < horizon
        a = row / horizon if top else (row - horizon) / max(1, size - horizon)
        base = sky if top else ground
        draw.line((0, row, size, row), fill=tuple(int(c * (1 - 0.35 * a)) for c in base))
    for _ in range(rng.randint(2, 5)):
        x, y, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(size / 12, size / 4)
        colour = tuple(rng.randint(30, 230) for _ in range(3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - r, y - r, x + r, y + r * rng.uniform(0.5, 1.5)), fill=colour)
    return im


def write_dataset(root: Path, movements: dict[str, str], paintings: int = 6, photos: int = 10,
                  size: int = 128, seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/paintings/<movement>/*.png`` (movement -> palette) and ``root/photos/*.png``."""
    for m, (movement, palette) in enumerate(movements.items()):
        folder = root / "paintings" / movement
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(paintings):
            painting(palette, size, seed=seed + 1000 * m + i).save(folder / f"{movement}_{i}.png")
    photo_dir = root / "photos"
    photo_dir.mkdir(parents=True, exist_ok=True)
    for i in range(photos):
        photo(size, seed=seed + i).save(photo_dir / f"photo_{i}.png")
    return root / "paintings", photo_dir
