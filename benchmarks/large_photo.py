"""Large photos on the CPU: peak memory of a 4000x3000 photo, and tiles against one pass.

1. ``artstyle stylize --engine torch`` on a 4000x3000 photo as a whole process, in tiles (the
   default for photos over 6 megapixels) and in one pass (``--tile 0``): wall seconds and peak
   resident memory.
2. On pictures small enough to paint both ways (default 2048x1536): the tiled result against the
   one-pass result, as PSNR (seams, or statistics that differ from the whole picture's, lower
   it). Two pictures: --mosaic, four photos side by side at their own resolution (real detail at
   every pixel, as in a camera's photo), and --photo enlarged (smooth: the hard case, see below).

Tiles share instance-norm statistics taken from the whole picture at 1024 px. Taken from a plain
downscaled copy, they drifted most on an enlarged photo, whose downscaled copy has far more fine
detail per pixel than the picture itself; hence the collages of full-resolution crops.

    P=../shared/data/photos/gcompris_
    python benchmarks/large_photo.py --photo ${P}brandenburggate.jpg \\
        --mosaic ${P}brandenburggate.jpg,${P}pig.jpg,${P}ajantacave.jpg,${P}palaisdespapes.jpg \\
        --json benchmarks/large_photo.json
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageOps

from artstyle import load
from artstyle.image import DEFAULT_TILE, psnr, to_tensor


def run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one whole process."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(command)} failed: {errors.read().decode(errors='replace')}")
    return wall, usage.ru_maxrss / 1024


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", required=True, help="a photo, resized to each size below")
    parser.add_argument("--model", default="baroque")
    parser.add_argument("--large", default="4000x3000")
    parser.add_argument("--both-ways", default="2048x1536", help="size painted in tiles and in one pass")
    parser.add_argument("--mosaic", default=None, help="four photos, comma-separated, shown 2x2 at --both-ways")
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    source = Image.open(args.photo).convert("RGB")
    large, both = _size(args.large), _size(args.both_ways)
    artstyle = shutil.which("artstyle") or str(Path(sys.executable).with_name("artstyle"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "large.jpg"
        ImageOps.fit(source, large, Image.Resampling.LANCZOS).save(photo, quality=92)
        for label, tile in (("tiles", args.tile), ("one pass", 0)):
            wall, peak = run([artstyle, "stylize", str(photo), "--model", args.model, "-o", f"{tmp}/out.png",
                              "--overwrite", "-q", "--engine", "torch", "--tile", str(tile)])
            rows.append({"size": args.large, "mode": label, "wall_s": round(wall, 2), "peak_mib": round(peak)})
    stylizer = load(args.model, engine="torch")
    pictures = {"enlarged photo": ImageOps.fit(source, both, Image.Resampling.LANCZOS)}
    if args.mosaic:
        pictures["mosaic of 4 photos"] = _mosaic(args.mosaic.split(","), both)
    comparisons = []
    for name, picture in pictures.items():
        image = to_tensor(picture)
        whole = stylizer.stylize_tensor(image, tile=0)
        tiled = stylizer.stylize_tensor(image, tile=args.tile)
        comparisons.append({"picture": name, "size": args.both_ways, "tile": args.tile,
                            "psnr_db": round(psnr(whole, tiled), 1)})
    print(f"model {args.model}, {torch.get_num_threads()} threads, precision {stylizer.dtype}")
    print(f"{'size':<12}{'mode':<10}{'wall s':>8}{'peak MiB':>10}")
    for row in rows:
        print(f"{row['size']:<12}{row['mode']:<10}{row['wall_s']:>8.2f}{row['peak_mib']:>10}")
    for c in comparisons:
        print(f"{c['picture']}, {c['size']}: tiles of {c['tile']} px against one pass: PSNR {c['psnr_db']} dB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                       "model": args.model, "photo": Path(args.photo).name, "rows": rows,
                       "tiled_vs_one_pass": comparisons}, f, indent=2)


def _mosaic(paths: list[str], size: tuple[int, int]) -> Image.Image:
    """Four photos in a 2x2 grid filling ``size``, each at (close to) its own resolution."""
    if len(paths) != 4:
        raise SystemExit("--mosaic takes four photos")
    cell = (size[0] // 2, size[1] // 2)
    picture = Image.new("RGB", size)
    for i, path in enumerate(paths):
        photo = ImageOps.fit(Image.open(path).convert("RGB"), cell, Image.Resampling.LANCZOS)
        picture.paste(photo, ((i % 2) * cell[0], (i // 2) * cell[1]))
    return picture


if __name__ == "__main__":
    main()
