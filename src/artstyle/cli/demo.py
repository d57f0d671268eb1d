"""``artstyle demo``: the bundled sample photo in every shipped movement."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .common import Formatter, common_options, emit, positive_int, progress_factory

log = logging.getLogger("artstyle")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", formatter_class=Formatter,
                       help="stylize the included sample photo with every shipped movement model",
                       description="Stylize the sample photo that ships with artstyle with every shipped "
                                   "movement model and write a labelled sheet. With no shipped models (or "
                                   "--tiny), first train a tiny model on generated images (about a minute on "
                                   "a CPU): it shows the pipeline, not a real movement.")
    p.add_argument("-o", "--output", default="artstyle-demo", help="folder for the demo's files")
    p.add_argument("--steps", type=positive_int, default=60, help="training steps of the tiny model")
    p.add_argument("--tiny", action="store_true",
                   help="train and use the tiny demo model even when shipped models are installed")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an earlier demo in OUTPUT")
    common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    if (Path(args.output) / "sheet.png").exists() and not args.overwrite:
        raise UsageError(f"{args.output} holds an earlier demo; use --overwrite to replace it, or -o another folder")
    sheet = run_demo(Path(args.output), args.device, steps=args.steps, progress=progress_factory(args),
                     use_shipped=not args.tiny)
    log.info("demo sheet: %s", sheet)
    emit(args, {"sheet": str(sheet)})
    return 0
