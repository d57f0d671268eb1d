"""Large photos on the CPU: peak memory of a 4000x3000 photo, and tiles against one pass.

1. ``artstyle stylize --engine torch`` on a 4000x3000 photo as a whole process, in tiles (the
   default for photos over 6 megapixels) and in one pass (``--tile 0``): wall seconds and peak
   resident memory.
2. On a photo small enough to paint both ways (default 2048x1536): the tiled result against the
   one-pass result, as PSNR (seams or a shifted tone between tiles would lower it).

    python benchmarks/large_photo.py --photo ../shared/data/photos/adain_chicago.jpg \\
        --json benchmarks/large_photo.json
"""

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from PIL import Image, ImageOps
from whole_process import run

from artstyle.catalog import expand_model_refs
from artstyle.image import DEFAULT_TILE, to_tensor
from artstyle.stylize import Stylizer


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", required=True, help="a photo, resized to each size below")
    parser.add_argument("--model", default="baroque")
    parser.add_argument("--large", default="4000x3000")
    parser.add_argument("--both-ways", default="2048x1536", help="size painted in tiles and in one pass")
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
    stylizer = Stylizer.from_pretrained(expand_model_refs([args.model])[0])
    image = to_tensor(ImageOps.fit(source, both, Image.Resampling.LANCZOS))
    whole = stylizer.stylize_tensor(image, tile=0)
    tiled = stylizer.stylize_tensor(image, tile=args.tile)
    mse = float((whole - tiled).pow(2).mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(1 / mse)
    print(f"model {args.model}, {torch.get_num_threads()} threads, precision {stylizer.dtype}")
    print(f"{'size':<12}{'mode':<10}{'wall s':>8}{'peak MiB':>10}")
    for row in rows:
        print(f"{row['size']:<12}{row['mode']:<10}{row['wall_s']:>8.2f}{row['peak_mib']:>10}")
    print(f"{args.both_ways}: tiles of {args.tile} px against one pass: PSNR {psnr:.1f} dB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                       "model": args.model, "rows": rows, "tiled_vs_one_pass": {
                           "size": args.both_ways, "tile": args.tile, "psnr_db": round(psnr, 1)}}, f, indent=2)


if __name__ == "__main__":
    main()
