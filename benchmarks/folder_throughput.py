"""A folder of photos through one ``artstyle stylize`` against one process per photo.

Makes --count photos of --size x --size px from a folder of real photos (cropped, re-encoded as
JPEG, in a temporary folder), then times ``artstyle stylize FOLDER`` once (decoding, the network
and writing overlapped) and ``artstyle stylize PHOTO`` for each of the first --singles photos, and
reports photos per second both ways. Both after a warm-up run that fills the caches.

    python benchmarks/folder_throughput.py --photos ../shared/data/photos --json benchmarks/folder_throughput.json
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps

from artstyle.image import list_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", required=True)
    parser.add_argument("--model", default="baroque-fast")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--singles", type=int, default=20, help="photos stylized one process each")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    artstyle = shutil.which("artstyle") or str(Path(sys.executable).with_name("artstyle"))
    sources = list_images(args.photos)
    with tempfile.TemporaryDirectory(prefix="artstyle-folder-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i in range(args.count):
            image = Image.open(sources[i % len(sources)]).convert("RGB")
            ImageOps.fit(image, (args.size, args.size)).save(folder / f"{i:04d}.jpg", quality=92)
        photos = sorted(folder.iterdir())

        def stylize(source: Path, out: Path) -> None:
            subprocess.run([artstyle, "stylize", str(source), "--model", args.model, "-o", str(out), "-q",
                            "--overwrite"], check=True)

        stylize(photos[0], Path(tmp) / "warm.png")
        start = time.perf_counter()
        stylize(folder, Path(tmp) / "out")
        folder_s = time.perf_counter() - start
        start = time.perf_counter()
        for photo in photos[: args.singles]:
            stylize(photo, Path(tmp) / "one.png")
        singles_s = time.perf_counter() - start
    report = {"model": args.model, "size": args.size, "isa_cap": os.environ.get("ONEDNN_MAX_CPU_ISA"),
              "folder": {"photos": args.count, "seconds": round(folder_s, 1),
                         "photos_per_s": round(args.count / folder_s, 3)},
              "one_process_each": {"photos": args.singles, "seconds": round(singles_s, 1),
                                   "photos_per_s": round(args.singles / singles_s, 3)},
              "speedup": round((args.count / folder_s) / (args.singles / singles_s), 2)}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
