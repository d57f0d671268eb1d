"""CPU inference at 1024x1024: fp32 eager PyTorch against artstyle's two fast paths.

For each model (default: the full ``baroque`` and its half-width ``baroque-fast``), three engines:

* ``torch fp32``: the network as trained, eager, NCHW (the baseline);
* ``torch bf16``: ``load(engine="torch", precision="bf16")``: bf16 weights, channels_last, instance norm
  through per-image batch norm (what ``artstyle stylize --engine torch`` runs on a bf16 CPU);
* ``openvino``: ``OpenVinoStylizer``, the cached ONNX export compiled by OpenVINO (bf16 on CPUs
  with AMX or AVX-512 BF16): what ``artstyle stylize`` runs by default on a CPU.

Network time only (no decoding, no start-up), batch 1. Each engine runs in turn (ABC, then CBA,
... for --rounds) after a warm-up; the table gives median seconds, the speed-up over fp32 and the
PSNR of the output against fp32's. Writes the figures as JSON too.

    python benchmarks/cpu_inference.py --json benchmarks/cpu_inference.json
"""

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from artstyle import load
from artstyle.engines.openvino_engine import OpenVinoStylizer
from artstyle.image import psnr
from artstyle.model_folder import ModelFolder


def engines(folder: str) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    exact = load(folder, engine="torch", precision="fp32")
    bf16 = load(folder, engine="torch", precision="bf16")
    openvino = OpenVinoStylizer(ModelFolder.from_pretrained(folder))
    return {
        "torch fp32": lambda x: exact.stylize_tensor(torch.from_numpy(x)).numpy(),
        "torch bf16": lambda x: bf16.stylize_tensor(torch.from_numpy(x)).numpy(),
        "openvino": openvino.stylize_array,
    }


def measure(folder: str, size: int, rounds: int) -> list[dict[str, object]]:
    runs = engines(folder)
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
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = [row for model in args.models.split(",") for row in measure(model, args.size, args.rounds)]
    print(f"{args.size}x{args.size}, batch 1, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"median of {args.rounds}")
    print(f"{'model':<20}{'engine':<12}{'median s':>10}{'speed-up':>10}{'PSNR dB':>10}")
    for row in rows:
        print(f"{row['model']!s:<20}{row['engine']!s:<12}{row['median_s']:>10.3f}{row['speedup']:>10.2f}"
              f"{row['psnr_vs_fp32_db']:>10.1f}")
    if args.json:
        import openvino

        with open(args.json, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                       "torch": torch.__version__, "openvino": openvino.get_version(), "size": args.size,
                       "rounds": args.rounds, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
