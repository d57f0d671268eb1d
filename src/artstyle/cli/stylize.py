"""``artstyle stylize`` (photos to painted files) and ``artstyle sheet`` (photos beside their
stylizations, as one labelled picture)."""

from __future__ import annotations

import argparse
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import ArtstyleError, ImageError, UsageError
from .common import (
    Formatter,
    common_options,
    emit,
    engine_option,
    look_options,
    one_model,
    positive_int,
    progress_factory,
    refuse_existing,
    tile_size,
)

log = logging.getLogger("artstyle")


def add_parsers(sub: Any) -> None:
    from ..config import INFERENCE_PRECISIONS
    from ..image import MIN_TILE

    p = sub.add_parser("stylize", formatter_class=Formatter,
                       help="apply a trained movement model to photos",
                       description="Apply a movement model to image files and/or folders of images.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    p.add_argument("--model", "-m", required=True, metavar="MODEL",
                   help="a shipped model's name (see 'artstyle models': baroque, or its quarter-width "
                        "baroque-fast, ...), a model folder written by 'artstyle train' (OUT/<movement>), "
                        "or an .onnx file written by 'artstyle export'")
    p.add_argument("-o", "--output", metavar="OUTPUT", default=None,
                   help="with one input file: the output file; otherwise a folder that receives "
                        "<input stem>.png for each input (default: stylized/)")
    p.add_argument("--size", type=positive_int, default=None, metavar="PX",
                   help="bound on the longest side of the output, px (default: the input's own size)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--tile", type=tile_size, default=None, metavar="PX",
                   help=f"paint in overlapping tiles of this size to bound memory, at least {MIN_TILE} px (0: never; "
                        "default: tiles of 1024 px for images over 6 megapixels)")
    engine_option(p)
    p.add_argument("--precision", choices=INFERENCE_PRECISIONS, default="auto",
                   help="number format of the network. auto: on the OpenVINO engine bf16 on CPUs with AMX, "
                        "int8 convolutions on other CPUs (both a picture within a few grey levels of fp32's, "
                        "and faster); on PyTorch bf16 on CPUs with AMX or AVX-512 BF16, else fp32 (on CUDA GPUs "
                        "too: there bf16 pays only in a compiled network, as 'artstyle video --compile' runs "
                        "it). int8 needs the OpenVINO engine")
    look_options(p)
    common_options(p)
    p.set_defaults(run=run_stylize)

    p = sub.add_parser("sheet", formatter_class=Formatter,
                       help="one labelled picture: photos beside their stylization by several models",
                       description="Show each photo (a row) beside its stylization by every given model, "
                                   "labelled with the movement, saved as one PNG. A joint model shows each "
                                   "of its movements, unless --movement picks one or a blend.")
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="the photo(s), one row each")
    p.add_argument("--model", "-m", action="append", default=None, metavar="MODEL",
                   help="a shipped model's name, a model folder, or a run folder holding one per movement; "
                        "repeat for more (default: every shipped movement model, without the -fast variants)")
    p.add_argument("-o", "--output", default="sheet.png", help="the image to write (.png, or .jpg for a smaller file)")
    p.add_argument("--size", type=positive_int, default=512, metavar="PX",
                   help="longest side the photo is stylized at, px")
    p.add_argument("--overwrite", action="store_true", help="replace an existing sheet")
    engine_option(p)
    look_options(p)
    common_options(p)
    p.set_defaults(run=run_sheet)


def run_stylize(args: argparse.Namespace) -> int:
    from ..engines import load, parse_movement
    from ..image import plan_outputs

    model = one_model(args.model)
    pairs = plan_outputs(args.inputs, args.output)
    refuse_existing([dst for _, dst in pairs], args.overwrite, "use --overwrite to replace")
    stylizer = load(model, engine=args.engine, device=args.device, precision=args.precision)
    movement = parse_movement(args.movement)
    stylizer.check(movement, args.strength, args.preserve_color, args.tile)  # before any work
    label = stylizer.label(movement)
    written, failed = [], []
    bar = progress_factory(args)(total=len(pairs), desc=f"stylize ({label})", unit="img")
    for src, dst, error in _paint_all(pairs, stylizer, args, movement):
        if error is None:
            written.append(str(dst))
        else:
            message = str(error) if str(error).startswith(str(src)) else f"{src}: {error}"
            if len(pairs) == 1:
                raise ImageError(message) from None
            log.warning("skipped %s", message)
            failed.append(str(src))
        bar.update(1)
    bar.close()
    skipped = f"; skipped {len(failed)} of {len(pairs)}" if failed else ""
    if len(written) == 1:
        log.info("wrote %s%s", written[0], skipped)
    elif written:
        log.info("wrote %d images to %s%s", len(written), Path(written[0]).parent, skipped)
    emit(args, {"model": str(model.path), "movement": label, "engine": stylizer.engines_used(),
                "written": written, "failed": failed})
    if not written:
        raise ArtstyleError("no image could be stylized; see the messages above")
    return 1 if failed else 0


AHEAD = 2  # photos decoded ahead of the network, and results waiting to be written: bounds memory


def _paint_all(pairs: Sequence[tuple[Path, Path]], stylizer: Any, args: argparse.Namespace, movement: Any
               ) -> Iterator[tuple[Path, Path, ImageError | None]]:
    """Paint each (input, output) pair, yielding it once written (or with the ImageError that skipped
    it), in order. Decoding the next photos and writing the last results run on threads of their
    own beside the network (Pillow's decoders, zlib and the engines release the GIL), so a folder
    takes about the network's time per photo."""
    from ..image import open_image, save_image

    def read(src: Path) -> Any:
        try:
            return open_image(src, max_side=args.size)
        except ImageError as err:
            return err

    with ThreadPoolExecutor(1, thread_name_prefix="artstyle-read") as readers, \
            ThreadPoolExecutor(1, thread_name_prefix="artstyle-write") as writers:
        reads = deque(readers.submit(read, src) for src, _ in pairs[:AHEAD])
        # (input, output, its write or None, the error that skipped it or None), in input order
        done: deque[tuple[Path, Path, Future[None] | None, ImageError | None]] = deque()
        for i, (src, dst) in enumerate(pairs):
            if i + AHEAD < len(pairs):
                reads.append(readers.submit(read, pairs[i + AHEAD][0]))
            image = reads.popleft().result()
            try:
                if isinstance(image, ImageError):
                    raise image
                result = stylizer(image, size=args.size, movement=movement, strength=args.strength,
                                  preserve_color=args.preserve_color, tile=args.tile)
            except ImageError as err:
                done.append((src, dst, None, err))
            else:
                done.append((src, dst, writers.submit(save_image, result, dst), None))
            while done and (len(done) > AHEAD or done[0][2] is None or done[0][2].done()):
                yield _finished(*done.popleft())
        while done:
            yield _finished(*done.popleft())


def _finished(src: Path, dst: Path, write: Future[None] | None, error: ImageError | None
              ) -> tuple[Path, Path, ImageError | None]:
    if write is not None:
        write.result()  # a write that failed stops the run, with its one line
    return src, dst, error


def run_sheet(args: argparse.Namespace) -> int:
    from ..engines import load, parse_movement
    from ..image import open_image, save_image
    from ..model_folder import resolve_models, shipped_models
    from ..sheet import make_sheet, sheet_entries

    output = Path(args.output)
    refuse_existing(output, args.overwrite)
    refs = args.model or list(shipped_models(fast=False))
    if not refs:
        raise UsageError("no shipped models are installed; give --model (a folder written by 'artstyle train')")
    stylizers = [load(m, engine=args.engine, device=args.device) for m in resolve_models(refs)]
    movement = parse_movement(args.movement)
    photos = [open_image(p) for p in args.photos]
    sheet = make_sheet(photos, stylizers, size=args.size, movement=movement, strength=args.strength,
                       preserve_color=args.preserve_color)
    save_image(sheet, output)
    labels = [s.label(m) for s, m in sheet_entries(stylizers, movement)]
    log.info("wrote %s (%s)", output, ", ".join(labels))
    emit(args, {"sheet": str(output), "movements": labels})
    return 0
