"""CPU inference at 1024x1024: fp32 eager PyTorch against artstyle's fast paths.

For each model (default: the full ``baroque`` and its half-width ``baroque-fast``), the engines:

* ``torch fp32``: the network as trained, eager, NCHW (the baseline);
* ``torch bf16``: ``load(engine="torch", precision="bf16")``: bf16 weights, channels_last, instance norm
  through per-image batch norm (what ``artstyle stylize --engine torch`` runs on a bf16 CPU); only
  where the CPU computes bf16 natively;
* ``openvino fp32``, ``openvino int8`` and, where bf16 is native, ``openvino bf16``: the cached ONNX
  export compiled by OpenVINO; ``artstyle stylize`` runs bf16 where it is native, int8 elsewhere.

The input is a real photo (--photo, cropped to the size) or noise. An AVX2-only CPU can be
approximated on a newer one with ``ONEDNN_MAX_CPU_ISA=AVX2``.

Network time only (no decoding, no start-up), batch 1. Each engine runs in turn (ABC, then CBA,
... for --rounds) after a warm-up; the table gives median seconds, the speed-up over fp32 and the
PSNR of the output against fp32's. Writes the figures as JSON too.

    python benchmarks/cpu_inference.py --json benchmarks/cpu_inference.json
"""

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import ImageOps

from artstyle import load
from artstyle.engines.openvino_engine import OpenVinoStylizer, cpu_has_bf16
from artstyle.image import open_image, psnr, to_array
from artstyle.model_folder import ModelFolder


def engines(folder: str) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    exact = load(folder, engine="torch", precision="fp32")
    model = ModelFolder.from_pretrained(folder)
    runs = {"torch fp32": lambda x: exact.stylize_tensor(torch.from_numpy(x)).numpy()}
    if cpu_has_bf16():
        bf16 = load(folder, engine="torch", precision="bf16")
        runs["torch bf16"] = lambda x: bf16.stylize_tensor(torch.from_numpy(x)).numpy()
        runs["openvino bf16"] = OpenVinoStylizer(model, precision="bf16").stylize_array
    runs["openvino fp32"] = OpenVinoStylizer(model, precision="fp32").stylize_array
    runs["openvino int8"] = OpenVinoStylizer(model, precision="int8").stylize_array
    return runs


def measure(folder: str, size: int, rounds: int, photo: str | None) -> list[dict[str, object]]:
    runs = engines(folder)
    if photo:
        x = to_array(ImageOps.fit(open_image(photo), (size, size)))
    else:
        x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    outputs = {name: fn(x) for name, fn in runs.items()}  # warm-up (and compile), and the outputs to compare
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for r in range(rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            start = time.perf_counter()
            runs[name](x)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["torch fp32"])
    rows: list[dict[str, object]] = []
    for name in runs:
        med = statistics.median(times[name])
        rows.append({"model": folder, "engine": name, "median_s": round(med, 3), "speedup": round(base / med, 2),
                     "psnr_vs_fp32_db": round(psnr(outputs[name], outputs["torch fp32"]), 1),
                     "runs": [round(t, 3) for t in times[name]]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="baroque,baroque-fast", help="comma-separated model names or folders")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--photo", default=None, help="a real photo as the input (default: noise)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = [row for model in args.models.split(",") for row in measure(model, args.size, args.rounds, args.photo)]
    print(f"{args.size}x{args.size}, batch 1, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"median of {args.rounds}")
    print(f"{'model':<20}{'engine':<15}{'median s':>10}{'speed-up':>10}{'PSNR dB':>10}")
    for row in rows:
        print(f"{row['model']!s:<20}{row['engine']!s:<15}{row['median_s']:>10.3f}{row['speedup']:>10.2f}"
              f"{row['psnr_vs_fp32_db']:>10.1f}")
    if args.json:
        import openvino

        with open(args.json, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                       "isa_cap": os.environ.get("ONEDNN_MAX_CPU_ISA"), "photo": args.photo,
                       "torch": torch.__version__, "openvino": openvino.get_version(), "size": args.size,
                       "rounds": args.rounds, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
