"""GPU inference at 1024x1024: fp32 eager against bf16 + channels_last, eager and compiled.

Milliseconds per image at batch 1 and batch 8 (median of --rounds, CUDA synchronised), and the
PSNR of each output against fp32's. Meant for a CUDA GPU; ``--device cpu --size 64`` checks the
script itself anywhere.

    python benchmarks/gpu_inference.py --json benchmarks/gpu_inference.json
"""

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable

import torch

from artstyle.catalog import expand_model_refs
from artstyle.image import psnr
from artstyle.stylize import Stylizer


def timed(fn: Callable[[], torch.Tensor], device: torch.device, rounds: int) -> tuple[float, torch.Tensor]:
    out = fn()  # warm-up (and compilation)
    times = []
    for _ in range(rounds):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out.float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="baroque")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    folder = expand_model_refs([args.model])[0]
    exact = Stylizer.from_pretrained(folder, device, precision="fp32")
    fast = Stylizer.from_pretrained(folder, device, precision="bf16")
    variants = {"fp32 eager": exact, "bf16 channels_last": fast}
    if not args.no_compile:
        compiled = Stylizer.from_pretrained(folder, device, precision="bf16")
        compiled.model = torch.compile(compiled.model)  # type: ignore[assignment]
        variants["bf16 channels_last compiled"] = compiled
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        x = torch.rand(batch, 3, args.size, args.size, device=device)
        reference = None
        for name, stylizer in variants.items():
            with torch.inference_mode():
                seconds, out = timed(functools.partial(stylizer.stylize_tensor, x), device, args.rounds)
            reference = out if reference is None else reference
            rows.append({"batch": batch, "variant": name, "ms_per_batch": round(1000 * seconds, 3),
                         "ms_per_image": round(1000 * seconds / batch, 3),
                         "images_per_s": round(batch / seconds, 1), "psnr_vs_fp32_db": round(psnr(out, reference), 1)})
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{args.size}x{args.size}, {gpu}, torch {torch.__version__}, median of {args.rounds}")
    print(f"{'batch':>5}  {'variant':<30}{'ms/batch':>10}{'ms/img':>9}{'img/s':>9}{'PSNR dB':>9}")
    for r in rows:
        print(f"{r['batch']:>5}  {r['variant']:<30}{r['ms_per_batch']:>10.2f}{r['ms_per_image']:>9.2f}"
              f"{r['images_per_s']:>9.1f}{r['psnr_vs_fp32_db']:>9.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": gpu, "torch": torch.__version__, "size": args.size, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
