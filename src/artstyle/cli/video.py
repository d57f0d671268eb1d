"""``artstyle video``: stylize a video frame by frame, keeping its timing and audio."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .common import (
    Formatter,
    common_options,
    emit,
    look_options,
    one_model,
    positive_int,
    progress_factory,
    refuse_existing,
    unit_float,
)

log = logging.getLogger("artstyle")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("video", formatter_class=Formatter, help="stylize a video, frame by frame",
                       description="Stylize every frame of a video and encode it as H.264 with the input's "
                                   "frame rate, timing and audio. Needs: pip install 'artstyle[video]'.")
    p.add_argument("input", metavar="INPUT", help="the video to stylize (anything FFmpeg reads)")
    p.add_argument("-o", "--output", required=True, help="the video to write (.mp4, .mkv, .mov)")
    p.add_argument("--model", "-m", required=True, help="a shipped model's name, a model folder or an .onnx file")
    p.add_argument("--size", type=positive_int, default=None, metavar="PX",
                   help="bound on the longest side of the output, px (default: the input's size)")
    p.add_argument("--smooth", type=unit_float, default=0.0,
                   help="reduce flicker, 0..1: blend with the previous output frame where the input did "
                        "not move (0 = off; try 0.5)")
    p.add_argument("--batch-size", type=positive_int, default=4, help="frames stylized at once")
    p.add_argument("--compile", action="store_true",
                   help="compile the network (torch.compile, bf16) before the first frames: tens of seconds "
                        "once, then several times faster frames on a GPU; for long videos")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    look_options(p)
    common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..engines import load, parse_movement
    from ..video import frame_count, stylize_video

    source, target = Path(args.input), Path(args.output)
    if not source.is_file():
        raise UsageError(f"{source}: no such video file")
    refuse_existing(target, args.overwrite)
    if args.compile and Path(args.model).suffix == ".onnx":
        raise UsageError("--compile applies to PyTorch models; give the model folder, not the .onnx file")
    stylizer = load(one_model(args.model), engine="torch", device=args.device, compile=args.compile)
    movement = parse_movement(args.movement)
    stylizer.check(movement, args.strength, args.preserve_color)
    bar = progress_factory(args)(total=frame_count(source) or None, desc=f"video ({stylizer.label(movement)})",
                                 unit="frame")
    report = stylize_video(source, target, stylizer, movement, size=args.size, strength=args.strength,
                           preserve_color=args.preserve_color, smooth=args.smooth, batch_size=args.batch_size,
                           progress=bar.update)
    bar.close()
    log.info("wrote %s: %d frames at %.3g fps, %dx%d%s; mean frame-to-frame change %.4f (input %.4f)",
             target, report.frames, report.fps, *report.size, ", audio kept" if report.audio else "",
             report.output_change, report.input_change)
    emit(args, {"video": str(target), **report.__dict__})
    return 0
