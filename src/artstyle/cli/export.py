"""``artstyle export``: a model as an ONNX file, checked against PyTorch."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .common import Formatter, common_options, emit, one_model, refuse_existing

log = logging.getLogger("artstyle")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", formatter_class=Formatter, help="export a model to ONNX",
                       description="Export a model to ONNX (dynamic batch, height and width; a joint model "
                                   "takes a second input 'style' with one weight per movement), check it with "
                                   "onnx's checker and compare ONNX Runtime with PyTorch on a real photo. "
                                   "'artstyle stylize --model FILE.onnx' then runs it through ONNX Runtime. "
                                   "Needs: pip install 'artstyle[onnx]'.")
    p.add_argument("--model", "-m", required=True, help="a shipped model's name or a model folder")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--check-image", default=None,
                   help="photo to compare ONNX Runtime with PyTorch on (default: the bundled sample photo)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import sample_photo_path
    from ..export import export_onnx

    output = Path(args.output)
    refuse_existing(output, args.overwrite)
    model = one_model(args.model)
    if model.is_onnx:
        raise UsageError(f"--model {args.model}: give one model folder or shipped model name, not an .onnx file")
    check = Path(args.check_image) if args.check_image else sample_photo_path()
    report = export_onnx(model, output, check)
    log.info("wrote %s (%.1f MB); ONNX Runtime vs PyTorch on %s: max difference %.2g, PSNR %.1f dB",
             output, report.size_bytes / 1e6, check.name, report.max_abs_diff, report.psnr_db)
    emit(args, {"onnx": str(output), "bytes": report.size_bytes, "max_abs_diff": report.max_abs_diff,
                "psnr_db": report.psnr_db, "check_image": str(check)})
    return 0
