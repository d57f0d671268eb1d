"""What a narrower or shallower stylizer network would cost: OpenVINO time at 1024x1024 for the
Johnson network at several widths (``--channels``) and depths (``--residual-blocks``), and of the
half-resolution network (``halfres/CxB``, :mod:`artstyle.models.halfres`), in int8 and fp32, with
random weights (speed does not depend on them). For choosing a cheaper network to distil the
shipped ones into; run it with ``ONEDNN_MAX_CPU_ISA=AVX2`` to see an AVX2-only CPU.

    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/narrow_networks.py --json benchmarks/narrow_networks_avx2.json
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from artstyle.config import ModelConfig, RunConfig
from artstyle.engines.openvino_engine import OpenVinoStylizer
from artstyle.model_folder import ModelFolder
from artstyle.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="32x5,16x5,16x3,16x2,12x3,8x5,halfres/8x5",
                        help="[ARCH/]CHANNELSxBLOCKS, comma-separated (ARCH: johnson, the default, or halfres)")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    rows = []
    with tempfile.TemporaryDirectory(prefix="artstyle-narrow-") as tmp:
        for shape in args.shapes.split(","):
            arch, _, size = shape.rpartition("/")
            channels, blocks = (int(v) for v in size.split("x"))
            config = ModelConfig(arch=arch or "johnson", channels=channels, residual_blocks=blocks, movements=("m",))
            name = shape.replace("/", "-")
            model = ModelFolder(name, RunConfig(model=config)).save_pretrained(Path(tmp) / name, build_model(config))
            row: dict[str, object] = {"arch": config.arch, "channels": channels, "residual_blocks": blocks}
            for precision in ("int8", "fp32"):
                stylizer = OpenVinoStylizer(model, precision=precision, cache_dir=Path(tmp) / "cache")
                stylizer.stylize_array(x)  # compile for the shape
                times = []
                for _ in range(args.rounds):
                    start = time.perf_counter()
                    stylizer.stylize_array(x)
                    times.append(time.perf_counter() - start)
                row[f"{precision}_s"] = round(statistics.median(times), 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"size": args.size, "isa_cap": os.environ.get("ONEDNN_MAX_CPU_ISA"),
                                               "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
