"""CPU inference of the full Johnson network at 1024x1024: fp32 eager against faster settings.

Each variant runs in turn (ABCD, then DCBA, ... for --rounds), after a warm-up; the table gives
the median seconds per image, the speed-up over fp32 eager, and the PSNR of each variant's output
against fp32's. Writes the figures as JSON too.

    python benchmarks/cpu_inference.py --model baroque --json benchmarks/cpu_inference.json
"""

import argparse
import contextlib
import copy
import json
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch

from artstyle.catalog import expand_model_refs
from artstyle.stylize import Stylizer


def variants(model: torch.nn.Module) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    last = copy.deepcopy(model).to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def run(x: torch.Tensor, channels_last: bool, bf16: bool) -> torch.Tensor:
        net = last if channels_last else model
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            return net(x).float()

    return {
        "fp32": lambda x: run(x, False, False),
        "fp32 channels_last": lambda x: run(x, True, False),
        "bf16 autocast": lambda x: run(x, False, True),
        "bf16 channels_last": lambda x: run(x, True, True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="baroque")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    stylizer = Stylizer.from_pretrained(expand_model_refs([args.model])[0])
    model = stylizer.model
    assert isinstance(model, torch.nn.Module)
    x = torch.rand(1, 3, args.size, args.size)
    runs = variants(model)
    reference = runs["fp32"](x)
    outputs = {name: fn(x) for name, fn in runs.items()}  # warm-up, and the outputs to compare
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for r in range(args.rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            start = time.perf_counter()
            runs[name](x)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["fp32"])
    rows = []
    for name in runs:
        med = statistics.median(times[name])
        mse = float((outputs[name] - reference).pow(2).mean())
        psnr = math.inf if mse == 0 else 10 * math.log10(1 / mse)
        rows.append({"variant": name, "median_s": round(med, 3), "speedup": round(base / med, 2),
                     "psnr_vs_fp32_db": round(psnr, 1), "runs": [round(t, 3) for t in times[name]]})
    print(f"{args.size}x{args.size}, batch 1, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'variant':<22}{'median s':>10}{'speed-up':>10}{'PSNR dB':>10}")
    for row in rows:
        print(f"{row['variant']:<22}{row['median_s']:>10.3f}{row['speedup']:>10.2f}{row['psnr_vs_fp32_db']:>10.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                       "torch": torch.__version__, "size": args.size, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
