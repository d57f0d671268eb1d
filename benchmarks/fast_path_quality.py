"""How close each fast path paints to fp32 PyTorch, for every shipped model, on real photos.

For each model: PSNR (dB) of the OpenVINO engine in int8 (convolutions quantised, calibrated on
the bundled sample photo), OpenVINO in bf16 and PyTorch in bf16 (where this CPU computes bf16
natively), each against PyTorch in fp32, on --count photos of a folder at --size px. Reports the
lowest and the median over the photos.

    python benchmarks/fast_path_quality.py --photos runs/photos/report --json benchmarks/fast_path_quality.json
"""

import argparse
import json
import os
import statistics
from pathlib import Path

from artstyle import load
from artstyle.engines.openvino_engine import cpu_has_bf16
from artstyle.image import list_images, open_image, psnr, resize_max, to_tensor
from artstyle.model_folder import shipped_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", required=True)
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--models", default=None, help="comma-separated (default: every shipped model)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    photos = [resize_max(open_image(p), args.size) for p in list_images(args.photos)[: args.count]]
    bf16 = cpu_has_bf16()
    paths = {"openvino int8": ("openvino", "int8")}
    if bf16:
        paths |= {"openvino bf16": ("openvino", "bf16"), "torch bf16": ("torch", "bf16")}
    rows = []
    for name in (args.models.split(",") if args.models else list(shipped_models())):
        reference = load(name, engine="torch", precision="fp32")
        expected = [to_tensor(reference(p)) for p in photos]
        row: dict[str, object] = {"model": name}
        for label, (engine, precision) in paths.items():
            stylizer = load(name, engine=engine, precision=precision)
            values = [psnr(to_tensor(stylizer(p)), e) for p, e in zip(photos, expected, strict=True)]
            row[label] = {"min_db": round(min(values), 1), "median_db": round(statistics.median(values), 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"photos": args.count, "size": args.size, "native_bf16": bf16,
                                               "isa_cap": os.environ.get("ONEDNN_MAX_CPU_ISA"), "rows": rows},
                                              indent=2) + "\n")


if __name__ == "__main__":
    main()
