"""Take docs/fast.jpg: photos painted by shipped full models (one column each) and, below each
photo's row, by their `-fast` variants.

Usage: python scripts/fast_picture.py docs/fast.jpg PHOTO [PHOTO ...] -- baroque impressionism cubism ...
"""

import sys

from artstyle import load
from artstyle.image import image_grid, open_image, resize_max, save_image
from artstyle.model_folder import shipped_models


def main(output: str, photos: list[str], movements: list[str]) -> None:
    full = [load(shipped_models()[m], engine="torch") for m in movements]
    fast = [load(shipped_models()[f"{m}-fast"], engine="torch") for m in movements]
    rows = []
    for path in photos:
        photo = resize_max(open_image(path), 512)
        rows.append([photo, *(s(photo) for s in full)])
        rows.append([photo, *(s(photo) for s in fast)])
    grid = image_grid(rows, labels=["photo (full, then -fast)", *movements], cell=320)
    if output.endswith(".jpg"):
        grid.convert("RGB").save(output, quality=88)
    else:
        save_image(grid, output)


if __name__ == "__main__":
    split = sys.argv.index("--")
    main(sys.argv[1], sys.argv[2:split], sys.argv[split + 1:])
