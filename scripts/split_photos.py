"""Split the shared photos into training, validation and report folders (links, not copies).

The shipped models train on ``train``; objectives and settings are chosen on ``val``; the figures
in docs/models.md are measured on ``report``, which no shipped model was trained on and nothing was
tuned on. ``report`` holds the four photos the earlier models held out, plus 36 drawn with a fixed
seed, so old and new models can also be compared on photos neither saw.
Usage: python scripts/split_photos.py ../shared/data/photos runs/photos
"""

import random
import sys
from pathlib import Path

EARLIER_HELD_OUT = ("coco_coco-train2014-000000000034.jpg", "coco_coco-train2014-000000000684.jpg",
                    "gcompris_ajantacave.jpg", "skimage_chelsea.jpg")


def main(source: str, out: str) -> None:
    photos = sorted(Path(source).resolve().glob("*.jpg"))
    rest = [p for p in photos if p.name not in EARLIER_HELD_OUT]
    random.Random(2026).shuffle(rest)
    splits = {
        "report": [p for p in photos if p.name in EARLIER_HELD_OUT] + rest[:36],
        "val": rest[36:52],
        "train": rest[52:],
    }
    for name, paths in splits.items():
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            link = folder / path.name
            link.unlink(missing_ok=True)
            link.symlink_to(path)
        print(f"{folder}: {len(paths)} photos")


if __name__ == "__main__":
    main(*sys.argv[1:])
