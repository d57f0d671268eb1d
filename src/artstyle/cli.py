"""The ``artstyle`` command: one short function per subcommand over the Python API.

Heavy modules (torch, training) are imported inside the subcommands, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ArtstyleError, ImageError, UsageError

log = logging.getLogger("artstyle")

EPILOG = """\
examples:
  artstyle demo                                         the sample photo in every shipped movement
  artstyle stylize photo.jpg --model baroque -o photo_baroque.png
  artstyle stylize photo.jpg --model baroque-fast        the half-width model: ~3x faster on a CPU
  artstyle sheet photo.jpg -o sheet.png                 every shipped movement side by side
  artstyle train paintings/ --photos photos/ --movements baroque,cubism --out runs/first
  artstyle stylize photos/ --model runs/first/cubism -o stylized/ --size 1024
  artstyle serve                                         the web page on http://127.0.0.1:8000
"""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults, except the uninformative ones (None, False) and those the help already gives."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from .config import PRECISIONS
    from .image import MIN_TILE

    parser = argparse.ArgumentParser(
        prog="artstyle",
        description="Learn the look of art movements from folders of their paintings, "
                    "and apply it to photos in milliseconds.",
        epilog=EPILOG, formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"artstyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", default="auto",
                       help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps")
        p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors; no progress bars")
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        p.add_argument("--json", action="store_true", help="print a JSON summary on stdout when done")
        p.add_argument("--debug", action="store_true", help="show the full traceback of unexpected errors")

    _train_parser(sub, common)

    p = sub.add_parser("stylize", formatter_class=_Formatter,
                       help="apply a trained movement model to photos",
                       description="Apply a movement model to image files and/or folders of images.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    p.add_argument("--model", "-m", required=True, metavar="MODEL",
                   help="a shipped model's name (see 'artstyle models': baroque, or its half-width "
                        "baroque-fast, ...), or a model folder written by 'artstyle train' (OUT/<movement>)")
    p.add_argument("-o", "--output", metavar="OUTPUT", default=None,
                   help="with one input file: the output file; otherwise a folder that receives "
                        "<input stem>.png for each input (default: stylized/)")
    p.add_argument("--size", type=_positive_int, default=None, metavar="PX",
                   help="bound on the longest side of the output, px (default: the input's own size)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--tile", type=_tile_size, default=None, metavar="PX",
                   help=f"paint in overlapping tiles of this size to bound memory, at least {MIN_TILE} px (0: never; "
                        "default: tiles of 1024 px for images over 6 megapixels)")
    p.add_argument("--engine", choices=("auto", "openvino", "torch"), default="auto",
                   help="what runs the network. openvino: on the CPU without starting PyTorch, bf16 where "
                        "the CPU has AMX or AVX-512 BF16; the quickest for a few photos (pip install "
                        "'artstyle[fast]'; the first use of a model exports it once). torch: any device, "
                        "joint models, --movement, --strength, --preserve-color, tiles. auto: openvino "
                        "when it is installed, no GPU is in sight and the options need nothing else")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="number format of the network; auto: bf16 on CPUs with AMX or AVX-512 BF16 "
                        "(outputs 50 to 60 dB PSNR from fp32's), else fp32 (on CUDA GPUs too: there "
                        "bf16 pays only in a compiled network, as 'artstyle video --compile' runs it)")
    _look_options(p)
    common(p)

    p = sub.add_parser("sheet", formatter_class=_Formatter,
                       help="one labelled picture: photos beside their stylization by several models",
                       description="Show each photo (a row) beside its stylization by every given model, "
                                   "labelled with the movement, saved as one PNG. A joint model shows each "
                                   "of its movements, unless --movement picks one or a blend.")
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="the photo(s), one row each")
    p.add_argument("--model", "-m", action="append", default=None, metavar="MODEL",
                   help="a shipped model's name, a model folder, or a run folder holding one per movement; "
                        "repeat for more (default: every shipped movement model, without the -fast variants)")
    p.add_argument("-o", "--output", default="sheet.png", help="the image to write (.png, or .jpg for a smaller file)")
    p.add_argument("--size", type=_positive_int, default=512, metavar="PX",
                   help="longest side the photo is stylized at, px")
    p.add_argument("--overwrite", action="store_true", help="replace an existing sheet")
    _look_options(p)
    common(p)

    p = sub.add_parser("evaluate", formatter_class=_Formatter,
                       help="measure how much models paint their movement, and how much photo they keep",
                       description="Measure, for each model and movement, on photos the model never saw: how "
                                   "often an independent movement classifier (EfficientNet-Lite0 features, "
                                   "not the training loss network) calls the outputs that movement, and how "
                                   "often a photo; the content retrieval (share of outputs whose nearest "
                                   "photo is their own); the style distance (Gram distance of the outputs to "
                                   "the movement's target, relative to the photos' own; lower = more of the "
                                   "movement), the content distance (VGG feature distance to the photo; lower "
                                   "= more of the photo) and seconds per image. Writes OUT/report.json and a "
                                   "sheet per model.")
    p.add_argument("photos", metavar="PHOTOS", nargs="+", help="photo files and/or folders")
    p.add_argument("--model", "-m", action="append", required=True, metavar="MODEL",
                   help="a shipped model's name, a model folder, or a run folder; repeat to compare")
    p.add_argument("--paintings", default=None, metavar="PAINTINGS_DIR",
                   help="the folder of movement sub-folders the targets come from "
                        "(default: the folder recorded in each model's config.json)")
    p.add_argument("-o", "--output", default="evaluation", help="folder for report.json and the sheets")
    p.add_argument("--size", type=_positive_int, default=512, metavar="PX", help="longest side of the photos, px")
    p.add_argument("--judge-photos", default=None, metavar="DIR",
                   help="ordinary photos for the classifier's photo class, at least 10 (default: the photos "
                        "folder the first model was trained on); the photos being evaluated are left out")
    p.add_argument("--judge-movements", type=_name_list, default=None, metavar="NAME[=FOLDER+...],...",
                   help="the classifier's movements, as 'artstyle train --movements' takes them (default: the "
                        "models' movements and every other folder of at least 10 paintings beside them)")
    p.add_argument("--no-judge", action="store_true",
                   help="skip the movement classifier and retrieval; only the VGG distances and speed")
    p.add_argument("--cache-dir", default=None, help="where style targets and the classifier are cached")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    common(p)

    p = sub.add_parser("serve", formatter_class=_Formatter, help="the web page and HTTP API",
                       description="Serve a web page where people drop a photo and pick a movement, and the "
                                   "HTTP API behind it (OpenAPI schema at /docs). Needs: pip install "
                                   "'artstyle[web]'.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 exposes it to the network")
    p.add_argument("--port", type=_positive_int, default=8000, help="port")
    p.add_argument("--model", "-m", action="append", default=None,
                   help="models to serve (names, folders or run folders; repeat; default: the shipped models)")
    p.add_argument("--max-upload-mb", type=_positive_int, default=20, help="largest upload, MB (413 above)")
    p.add_argument("--max-megapixels", type=_positive_int, default=40, help="largest photo, megapixels (413 above)")
    p.add_argument("--max-output-side", type=_positive_int, default=2048, help="longest side of a result, px")
    p.add_argument("--workers", type=_positive_int, default=1, help="stylizations running at once")
    p.add_argument("--queue", type=_positive_int, default=8, help="requests that may wait; more get 503")
    common(p)

    p = sub.add_parser("video", formatter_class=_Formatter, help="stylize a video, frame by frame",
                       description="Stylize every frame of a video and encode it as H.264 with the input's "
                                   "frame rate, timing and audio. Needs: pip install 'artstyle[video]'.")
    p.add_argument("input", metavar="INPUT", help="the video to stylize (anything FFmpeg reads)")
    p.add_argument("-o", "--output", required=True, help="the video to write (.mp4, .mkv, .mov)")
    p.add_argument("--model", "-m", required=True, help="a shipped model's name, a model folder or an .onnx file")
    p.add_argument("--size", type=_positive_int, default=None, metavar="PX",
                   help="bound on the longest side of the output, px (default: the input's size)")
    p.add_argument("--smooth", type=_unit_float, default=0.0,
                   help="reduce flicker, 0..1: blend with the previous output frame where the input did "
                        "not move (0 = off; try 0.5)")
    p.add_argument("--batch-size", type=_positive_int, default=4, help="frames stylized at once")
    p.add_argument("--compile", action="store_true",
                   help="compile the network (torch.compile, bf16) before the first frames: about 30 s, "
                        "then 1.4 ms a 1024 px frame on an H200 at batch 8 (8.6 uncompiled); for long videos on a GPU")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _look_options(p)
    common(p)

    p = sub.add_parser("export", formatter_class=_Formatter, help="export a model to ONNX",
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
    common(p)

    p = sub.add_parser("models", formatter_class=_Formatter, help="list the shipped movement models",
                       description="List the models that come with artstyle, with what they were trained on. "
                                   "Use their names with --model.")
    common(p)

    p = sub.add_parser("demo", formatter_class=_Formatter,
                       help="stylize the included sample photo with every shipped movement model",
                       description="Stylize the sample photo that ships with artstyle with every shipped "
                                   "movement model and write a labelled sheet. With no shipped models (or "
                                   "--tiny), first train a tiny model on generated images (about a minute on "
                                   "a CPU): it shows the pipeline, not a real movement.")
    p.add_argument("-o", "--output", default="artstyle-demo", help="folder for the demo's files")
    p.add_argument("--steps", type=_positive_int, default=60, help="training steps of the tiny model")
    p.add_argument("--tiny", action="store_true",
                   help="train and use the tiny demo model even when shipped models are installed")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an earlier demo in OUTPUT")
    common(p)
    return parser


def _look_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--movement", default=None, metavar="NAME[:W,...]",
                   help="for a joint model: the movement to paint, or a blend such as "
                        "baroque:0.5,impressionism:0.5 (weights are normalised)")
    p.add_argument("--strength", type=_unit_float, default=1.0,
                   help="how much of the style, 0..1 (0 returns the photo)")
    p.add_argument("--preserve-color", action="store_true",
                   help="keep the photo's colours; take only the movement's light and texture")


def _train_parser(sub: Any, common: Any) -> None:
    from .config import (
        LOSS_PRESETS,
        PHOTO_LOADERS,
        PRECISIONS,
        STREAM_FROM,
        STYLE_LOSSES,
        VGG_RELU_LAYERS,
        DataConfig,
        ModelConfig,
        TrainConfig,
        loss_preset,
    )

    d, t, m, lc = DataConfig(), TrainConfig(), ModelConfig(), loss_preset("default")
    p = sub.add_parser(
        "train", formatter_class=_Formatter, help="train one model per movement",
        description="Train one fast stylizer network per art movement. PAINTINGS_DIR holds one "
                    "sub-folder per movement (root/<movement>/*.jpg, the WikiArt layout). Each movement "
                    "gets OUT/<movement>/ with model.safetensors, config.json, checkpoint.pt, losses.csv, "
                    "loss.png and preview.png.",
    )
    p.add_argument("paintings", metavar="PAINTINGS_DIR", help="folder with one sub-folder of paintings per movement")
    p.add_argument("--photos", required=True, nargs="+", metavar="PHOTOS",
                   help="ordinary photos to train on: folders (searched recursively), text files listing photos "
                        "(one path per line, relative to the file), or photos")
    p.add_argument("--movements", type=_name_list, default=None,
                   help="comma-separated movements to train (default: every movement with at least "
                        "--min-paintings paintings); NAME=FOLDER+FOLDER makes one movement of several "
                        "folders, e.g. modern_art=abstract+fauvism+futurism,baroque")
    p.add_argument("--out", default=None, help="run folder (default: runs/<name of PAINTINGS_DIR>)")
    p.add_argument("--joint", action="store_true",
                   help="train ONE network for all the movements (conditional instance norm), in OUT/joint; "
                        "it can blend movements at stylize time")
    p.add_argument("--joint-name", default="joint", help="folder name of the --joint network inside OUT")
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=_positive_int, default=t.steps, help="optimisation steps per movement")
    g.add_argument("--batch-size", type=_positive_int, default=t.batch_size, help="photos per step")
    g.add_argument("--lr", type=_positive_float, default=t.lr, help="Adam learning rate")
    g.add_argument("--lr-step", type=_count, default=t.lr_step,
                   help="steps between learning-rate drops (0: one drop at 3/4 of the run)")
    g.add_argument("--lr-gamma", type=_positive_float, default=t.lr_gamma, help="factor of each learning-rate drop")
    g.add_argument("--seed", type=int, default=t.seed, help="random seed (CPU runs are reproducible)")
    g.add_argument("--precision", choices=PRECISIONS, default=t.precision,
                   help="auto: bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere")
    g.add_argument("--compile", action="store_true",
                   help="compile the training step (torch.compile): on an H200, 674 against 452 photos/s at "
                        "batch 16 after about 40 s of compiling, so worth it from about 3500 steps")
    g.add_argument("--checkpoint-every", type=_positive_int, default=t.checkpoint_every,
                   help="steps between checkpoints")
    g.add_argument("--preview-every", type=_positive_int, default=t.preview_every,
                   help="steps between preview.png refreshes")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint; stops if there is none")
    g.add_argument("--resume-or-start", action="store_true",
                   help="resume where there is a checkpoint, else start (with a warning): one command for a "
                        "first start and for every restart after a preemption")
    g.add_argument("--overwrite", action="store_true", help="start again, replacing an earlier run in --out")
    g = p.add_argument_group("data")
    g.add_argument("--image-size", type=_positive_int, default=d.image_size, help="side of the square photo crops, px")
    g.add_argument("--style-size", type=_positive_int, default=d.style_size,
                   help="shorter side paintings are resized to for the style target, px")
    g.add_argument("--max-paintings", type=_positive_int, default=d.max_paintings,
                   help="paintings per movement averaged into its style (drawn at random)")
    g.add_argument("--style-views", type=_positive_int, default=d.style_views,
                   help="at least this many views of the paintings make the style target; a movement with "
                        "fewer paintings gets several random crops and scales of each (1: whole paintings only)")
    g.add_argument("--min-paintings", type=_positive_int, default=d.min_paintings,
                   help="without --movements, skip movements with fewer paintings")
    g.add_argument("--photo-loader", choices=PHOTO_LOADERS, default=d.photo_loader,
                   help=f"memory: decode every photo before the first step and keep them (quickest for a few "
                        f"thousand); stream: decode them as training goes, in --workers threads, in bounded "
                        f"memory whatever their number; auto: stream above {STREAM_FROM} photos")
    g.add_argument("--workers", type=_count, default=None,
                   help="threads decoding photos (and paintings) ahead of training (0: none, decode in turn; "
                        "default: the CPU cores but one, up to 4)")
    g.add_argument("--preview-photos", type=_count, default=d.preview_photos,
                   help="photos held out of training and shown in preview.png")
    g.add_argument("--cache-dir", default=None,
                   help="where style targets are cached (default: $ARTSTYLE_CACHE or ~/.cache/artstyle)")
    g = p.add_argument_group("loss")
    g.add_argument("--preset", choices=tuple(LOSS_PRESETS), default="default",
                   help="named loss settings (see the README): default (sliced style loss), gram (the mean "
                        "Gram matrix, the earlier default), original-light, original-heavy (the seed project's); "
                        "the options below override it")
    g.add_argument("--style-loss", choices=STYLE_LOSSES, default=None,
                   help=f"what the style loss matches (default {lc.style_loss}): gram, the paintings' mean Gram "
                        "matrix (their average palette and texture), or sliced, the distribution of their VGG "
                        "features (sliced Wasserstein: keeps a movement's several looks instead of their mean)")
    g.add_argument("--content-layer", default=None, choices=VGG_RELU_LAYERS, metavar="LAYER",
                   help=f"VGG layer of the content loss (default {lc.content_layer}; relu2_2 keeps more detail)")
    g.add_argument("--content-weight", type=_positive_float, default=None, help=f"(default {lc.content_weight:g})")
    g.add_argument("--style-weight", type=_positive_float, default=None, help=f"(default {lc.style_weight:g})")
    g.add_argument("--style-layer-weights", type=_float_list, default=None,
                   help="comma-separated weights of relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 "
                        f"(default {','.join(f'{w:g}' for w in lc.style_layer_weights)})")
    g.add_argument("--tv-weight", type=_weight, default=None, help=f"total-variation weight (default {lc.tv_weight:g})")
    g.add_argument("--adversarial-weight", type=_weight, default=None,
                   help=f"weight of a movement critic, a patch discriminator trained on crops of the movement's "
                        f"paintings against the outputs (default {lc.adversarial_weight:g}: none); slower per "
                        "step, and it needs thousands of steps to pay; one movement at a time")
    g.add_argument("--vgg", default=lc.vgg_weights,
                   help="loss network weights: oxford (bundled, offline), torchvision (downloads), or a file")
    g = p.add_argument_group("network")
    g.add_argument("--channels", type=_positive_int, default=m.channels, help="width of the first layer")
    g.add_argument("--residual-blocks", type=_positive_int, default=m.residual_blocks, help="residual blocks")
    common(p)


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _positive_int(text: str) -> int:
    value = _whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def _count(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def _tile_size(text: str) -> int:
    from .image import MIN_TILE

    value = _count(text)
    if 0 < value < MIN_TILE:
        raise argparse.ArgumentTypeError(f"{value} px is too small: give at least {MIN_TILE} px, or 0 to paint whole")
    return value


def _weight(text: str) -> float:
    value = _number(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a number, 0 or more")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def _unit_float(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..1")
    return value


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _name_list(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one movement name")
    return names


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("artstyle: %(message)s"))
    root = logging.getLogger("artstyle")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _progress_factory(args: argparse.Namespace, log_interval: float = 30.0) -> Any:
    """Progress bars on a terminal; without one (a log file, a scheduler), a log line at most every
    ``log_interval`` seconds; nothing with --quiet."""
    from tqdm import tqdm

    def factory(**kwargs: Any) -> Any:
        if args.quiet:
            return tqdm(disable=True, **kwargs)
        if not sys.stderr.isatty():
            return _LogProgress(interval=log_interval, **kwargs)
        return tqdm(dynamic_ncols=True, unit_scale=False, smoothing=0.1, **kwargs)

    return factory


class _LogProgress:
    """A progress bar for logs: "desc: n/total unit (p%), elapsed, ETA" at most every ``interval`` s,
    and once at the end."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
                 interval: float = 30.0, clock: Any = None, **_: Any) -> None:
        import time

        self._clock = clock or time.monotonic
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.n = self.initial = self.logged = initial
        self.start = self.last = self._clock()
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._clock() - self.last >= self.interval:
            self._log()

    def set_postfix_str(self, s: str) -> None:
        self.postfix = s

    def close(self) -> None:
        if self.n != self.logged:
            self._log()

    def _log(self) -> None:
        now = self._clock()
        elapsed = now - self.start
        line = f"{self.desc}: {self.n}"
        if self.total:
            line += f"/{self.total} {self.unit} ({100 * self.n / self.total:.0f}%)"
            done = self.n - self.initial
            if 0 < done and self.n < self.total:
                line += f", ETA {_duration(elapsed / done * (self.total - self.n))}"
        else:
            line += f" {self.unit}"
        line += f", {_duration(elapsed)} elapsed"
        log.info("%s%s", line, f"; {self.postfix}" if self.postfix else "")
        self.last, self.logged = now, self.n


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _emit(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(summary, indent=2))


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .catalog import default_cache_dir
    from .config import DataConfig, ModelConfig, RunConfig, TrainConfig, loss_preset
    from .training import distributed
    from .training.loop import TrainRequest, train

    loss = loss_preset(
        args.preset, style_loss=args.style_loss, content_layer=args.content_layer, content_weight=args.content_weight,
        style_weight=args.style_weight, style_layer_weights=args.style_layer_weights,
        tv_weight=args.tv_weight, adversarial_weight=args.adversarial_weight, vgg_weights=args.vgg,
    )
    config = RunConfig(
        model=ModelConfig(channels=args.channels, residual_blocks=args.residual_blocks),
        loss=loss,
        data=replace(DataConfig(), image_size=args.image_size, style_size=args.style_size,
                     max_paintings=args.max_paintings, style_views=args.style_views,
                     min_paintings=args.min_paintings, preview_photos=args.preview_photos,
                     photo_loader=args.photo_loader),
        train=TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, lr_step=args.lr_step,
                          lr_gamma=args.lr_gamma, seed=args.seed, precision=args.precision,
                          checkpoint_every=args.checkpoint_every, preview_every=args.preview_every),
    )
    paintings = Path(args.paintings)
    if (args.resume or args.resume_or_start) and args.overwrite:
        raise UsageError("--resume and --overwrite contradict each other; choose one")
    out = Path(args.out) if args.out else Path("runs") / (paintings.resolve().name or "run")
    device = distributed.init_from_env(args.device)  # one process of several under torchrun
    main_process = distributed.is_main()
    if not main_process:
        logging.getLogger("artstyle").setLevel(logging.WARNING)
        args.quiet = True
    request = TrainRequest(
        paintings=paintings, photos=tuple(Path(p) for p in args.photos), out=out, config=config,
        movements=args.movements or (), device=device, resume=args.resume or args.resume_or_start,
        start_if_new=args.resume_or_start,
        overwrite=args.overwrite, joint=args.joint, joint_name=args.joint_name,
        cache_dir=Path(args.cache_dir) if args.cache_dir else default_cache_dir(), compile=args.compile,
        **({"workers": args.workers} if args.workers is not None else {}),
    )
    try:
        results = train(request, progress=_progress_factory(args))
    finally:
        distributed.shutdown()
    if not main_process:
        return 0
    _emit(args, {"out": str(out), "models": [
        {"name": r.name, "folder": str(r.folder), "steps": r.steps, "seconds": round(r.seconds, 1),
         "final_losses": r.final_losses} for r in results]})
    return 0


def cmd_stylize(args: argparse.Namespace) -> int:
    from .catalog import expand_model_refs, plan_outputs
    from .image import open_image, save_image

    folders = expand_model_refs([args.model])
    if len(folders) != 1:
        raise UsageError(f"--model {args.model} holds {len(folders)} models; pick one: "
                         + ", ".join(str(f) for f in folders))
    pairs = plan_outputs(args.inputs, args.output)
    existing = [dst for _, dst in pairs if dst.exists()]
    if existing and not args.overwrite:
        raise UsageError(f"{existing[0]} exists{f' (and {len(existing) - 1} more)' if len(existing) > 1 else ''}; "
                         "use --overwrite to replace")
    painter = _Painter(args, folders[0])
    written, failed = [], []
    bar = _progress_factory(args)(total=len(pairs), desc=f"stylize ({painter.label})", unit="img")
    for src, dst in pairs:
        try:
            result = painter(open_image(src))
        except ImageError as err:
            message = str(err) if str(err).startswith(str(src)) else f"{src}: {err}"
            if len(pairs) == 1:
                raise ImageError(message) from None
            log.warning("skipped %s", message)
            failed.append(str(src))
        else:
            save_image(result, dst)
            written.append(str(dst))
        bar.update(1)
    bar.close()
    skipped = f"; skipped {len(failed)} of {len(pairs)}" if failed else ""
    if len(written) == 1:
        log.info("wrote %s%s", written[0], skipped)
    elif written:
        log.info("wrote %d images to %s%s", len(written), Path(written[0]).parent, skipped)
    _emit(args, {"model": str(folders[0]), "movement": painter.label, "engine": painter.engines_used(),
                 "written": written, "failed": failed})
    if not written:
        raise ArtstyleError("no image could be stylized; see the messages above")
    return 1 if failed else 0


class _Painter:
    """``artstyle stylize``'s engine choice: OpenVINO for plain jobs on the CPU, PyTorch for the rest
    (and for images too large to paint whole), each loaded only when first needed."""

    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args, self.folder = args, folder
        self.openvino: Any = None
        self.torch: Any = None
        self.movement: Any = None
        self.used: set[str] = set()
        if _wants_openvino(args, folder):
            from .fastpath import OpenVinoStylizer

            try:
                self.openvino = OpenVinoStylizer(folder, args.precision)
            except (ArtstyleError, OSError) as err:
                if args.engine == "openvino":
                    raise
                log.warning("the OpenVINO engine is unavailable (%s); using PyTorch", err)
        if self.openvino is not None:
            self.label = self.openvino.label()
        else:
            self.label = self._torch_stylizer().label(self.movement)

    def _torch_stylizer(self) -> Any:
        if self.torch is None:
            from .runtime import resolve_device
            from .stylize import parse_movement

            self.torch = _load_stylizer(self.folder, resolve_device(self.args.device), self.args.precision)
            self.movement = parse_movement(self.args.movement)
            self.torch.style_weights(self.movement)  # a wrong --movement fails before any work
        return self.torch

    def __call__(self, image: Any) -> Any:
        from .image import bounded_size, tile_for

        a = self.args
        if self.openvino is not None and not tile_for(bounded_size(image.size, a.size), a.tile):
            self.used.add("openvino")
            return self.openvino(image, size=a.size)
        self.used.add("torch")
        return self._torch_stylizer()(image, size=a.size, movement=self.movement, strength=a.strength,
                                      preserve_color=a.preserve_color, tile=a.tile)

    def engines_used(self) -> list[str]:
        """The engines that painted at least one image, for the --json summary."""
        return sorted(self.used)


def _wants_openvino(args: argparse.Namespace, folder: Path) -> bool:
    """--engine openvino, or auto with OpenVINO installed, the CPU as the device and plain options."""
    from .catalog import read_model_config
    from .fastpath import gpu_may_exist, openvino_available

    if args.engine == "torch":
        return False
    plain = args.movement is None and args.strength == 1.0 and not args.preserve_color and not args.tile
    exported = folder.suffix == ".onnx"
    joint = not exported and read_model_config(folder)["model"].get("conditional", False)
    if args.engine == "openvino":
        if exported:
            raise UsageError(f"--engine openvino takes a model folder (it makes its own export), not {folder.name}; "
                             "give the folder, or use --engine torch to run the .onnx file with ONNX Runtime")
        if joint:
            raise UsageError(f"{folder} is a joint model: the OpenVINO engine runs one-movement models; "
                             "use --engine torch")
        if not plain:
            raise UsageError("--engine openvino paints whole images at full strength: drop --movement, "
                             "--strength, --preserve-color and --tile, or use --engine torch")
        if args.device not in ("auto", "cpu"):
            raise UsageError(f"--engine openvino runs on the CPU, not --device {args.device}; "
                             "use --engine torch for other devices")
        return True
    on_cpu = args.device == "cpu" or (args.device == "auto" and not gpu_may_exist())
    return plain and not exported and not joint and on_cpu and openvino_available()


def cmd_sheet(args: argparse.Namespace) -> int:
    from .catalog import expand_model_refs, shipped_models
    from .image import open_image, save_image
    from .runtime import resolve_device
    from .stylize import make_sheet, parse_movement, sheet_entries

    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise UsageError(f"{output} exists; use --overwrite to replace it")
    refs = args.model or list(shipped_models(fast=False))
    if not refs:
        raise UsageError("no shipped models are installed; give --model (a folder written by 'artstyle train')")
    device = resolve_device(args.device)
    stylizers = [_load_stylizer(f, device) for f in expand_model_refs(refs)]
    movement = parse_movement(args.movement)
    photos = [open_image(p) for p in args.photos]
    sheet = make_sheet(photos, stylizers, size=args.size, movement=movement, strength=args.strength,
                       preserve_color=args.preserve_color)
    save_image(sheet, output)
    labels = [s.label(m) for s, m in sheet_entries(stylizers, movement)]
    log.info("wrote %s (%s)", output, ", ".join(labels))
    _emit(args, {"sheet": str(output), "movements": labels})
    return 0


def _load_stylizer(path: Path, device: Any, precision: str = "auto", compile: bool = False) -> Any:
    """A Stylizer for a model folder, or for an exported .onnx file (run by ONNX Runtime, on the CPU)."""
    if path.suffix == ".onnx":
        if compile:
            raise UsageError("--compile applies to PyTorch models; give the model folder, not the .onnx file")
        from .export import load_onnx_stylizer

        return load_onnx_stylizer(path)
    from .stylize import Stylizer

    return Stylizer.from_pretrained(path, device, precision, compile)


def cmd_serve(args: argparse.Namespace) -> int:
    from .runtime import resolve_device
    from .web.app import Limits, create_app

    try:
        import uvicorn
    except ImportError:
        raise ArtstyleError("the web page needs uvicorn: pip install 'artstyle[web]'") from None
    limits = Limits(max_upload_bytes=args.max_upload_mb * 2**20, max_pixels=args.max_megapixels * 1_000_000,
                    max_output_side=args.max_output_side, workers=args.workers, queue=args.queue)
    app = create_app(args.model, resolve_device(args.device), limits)
    log.info("serving on http://%s:%d (API schema at /docs); Ctrl-C stops", args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    from .catalog import expand_model_refs
    from .runtime import resolve_device
    from .stylize import parse_movement
    from .video import frame_count, stylize_video

    source, target = Path(args.input), Path(args.output)
    if not source.is_file():
        raise UsageError(f"{source}: no such video file")
    if target.exists() and not args.overwrite:
        raise UsageError(f"{target} exists; use --overwrite to replace it")
    folders = expand_model_refs([args.model])
    if len(folders) != 1:
        raise UsageError(f"--model {args.model} holds {len(folders)} models; pick one")
    stylizer = _load_stylizer(folders[0], resolve_device(args.device), compile=args.compile)
    movement = parse_movement(args.movement)
    stylizer.style_weights(movement)
    bar = _progress_factory(args)(total=frame_count(source) or None, desc=f"video ({stylizer.label(movement)})",
                                  unit="frame")
    report = stylize_video(source, target, stylizer, movement, size=args.size, strength=args.strength,
                           preserve_color=args.preserve_color, smooth=args.smooth, batch_size=args.batch_size,
                           progress=bar.update)
    bar.close()
    log.info("wrote %s: %d frames at %.3g fps, %dx%d%s; mean frame-to-frame change %.4f (input %.4f)",
             target, report.frames, report.fps, *report.size, ", audio kept" if report.audio else "",
             report.output_change, report.input_change)
    _emit(args, {"video": str(target), **report.__dict__})
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .catalog import expand_model_refs
    from .demo import sample_photo_path
    from .export import export_onnx

    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise UsageError(f"{output} exists; use --overwrite to replace it")
    folders = expand_model_refs([args.model])
    if len(folders) != 1 or folders[0].suffix == ".onnx":
        raise UsageError(f"--model {args.model}: give one model folder or shipped model name")
    check = Path(args.check_image) if args.check_image else sample_photo_path()
    report = export_onnx(folders[0], output, check)
    log.info("wrote %s (%.1f MB); ONNX Runtime vs PyTorch on %s: max difference %.2g, PSNR %.1f dB",
             output, report.size_bytes / 1e6, check.name, report.max_abs_diff, report.psnr_db)
    _emit(args, {"onnx": str(output), "bytes": report.size_bytes, "max_abs_diff": report.max_abs_diff,
                 "psnr_db": report.psnr_db, "check_image": str(check)})
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .catalog import default_cache_dir, expand_model_refs
    from .evaluate import evaluate
    from .image import iter_inputs, save_image
    from .runtime import resolve_device
    from .training.checkpoint import write_json

    out = Path(args.output)
    if (out / "report.json").exists() and not args.overwrite:
        raise UsageError(f"{out / 'report.json'} exists; use --overwrite to replace it")
    device = resolve_device(args.device)
    photos = iter_inputs(args.photos)
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    paintings = Path(args.paintings) if args.paintings else None
    report: dict[str, Any] = {"photos": [str(p) for p in photos], "size": args.size, "device": str(device),
                              "models": []}
    stylizers = [(folder, _load_stylizer(folder, device)) for folder in expand_model_refs(args.model)]
    judge = None if args.no_judge else _build_judge(args, [s for _, s in stylizers], photos, paintings, device, cache)
    if judge is not None:
        report["judge"] = {"classes": judge.classifier.classes, "cross_validated_accuracy":
                           round(judge.classifier.accuracy, 4)}
    sheets: dict[Path, Any] = {}  # written with the report, once every model is done: no partial results
    for folder, stylizer in stylizers:
        scores, sheet = evaluate(stylizer, photos, paintings, size=args.size, cache_dir=cache, judge=judge)
        sheet_path = out / f"{stylizer.name}_sheet.png"
        if sheet_path in sheets:  # two models of one name
            sheet_path = out / f"{folder.parent.name}_{stylizer.name}_sheet.png"
        sheets[sheet_path] = sheet
        report["models"].append({"model": stylizer.name, "folder": str(folder), "sheet": str(sheet_path),
                                 "precision": str(stylizer.dtype).removeprefix("torch."),
                                 "scores": [s.as_dict() for s in scores]})
        for s in scores:
            judged = (f"called it {s.called_movement:4.0%}  photo {s.called_photo:4.0%}  retrieval "
                      f"{s.retrieval:.2f}  " if s.called_movement is not None and s.called_photo is not None
                      and s.retrieval is not None else "")
            log.info("%-16s %-18s %sstyle %.3f  content %.3f  %.3f s/image", stylizer.name, s.movement, judged,
                     s.style_distance, s.content_distance, s.seconds_per_image)
    for sheet_path, sheet in sheets.items():
        save_image(sheet, sheet_path)
    write_json(out / "report.json", report)
    log.info("wrote %s", out / "report.json")
    _emit(args, report)
    return 0


def _build_judge(args: argparse.Namespace, stylizers: Sequence[Any], photos: Sequence[Path],
                 paintings: Path | None, device: Any, cache: Path) -> Any:
    """The movement classifier for ``artstyle evaluate``: the models' movements, the other movement
    folders beside them, and a photo class."""
    from .evaluate import build_judge, paintings_folders
    from .image import list_images
    from .training.data import movement_folders, parse_movement

    movements: dict[str, list[Path]] = {}
    for stylizer in stylizers:
        for movement in stylizer.movements:
            movements.setdefault(movement, paintings_folders(stylizer, movement, paintings))
    root = paintings or next(iter(movements.values()))[0].parent
    if args.judge_movements:
        given = dict(parse_movement(spec) for spec in args.judge_movements)
        missing = [m for m in movements if m not in given]
        if missing:
            raise UsageError(f"--judge-movements leaves out {', '.join(missing)}, which the models paint; add it")
        movements = movement_folders(root, args.judge_movements, list(given))
    recorded = stylizers[0].config.get("trained", {}).get("photos_folder")
    source = args.judge_photos or recorded
    if not source or not Path(source).is_dir():
        raise UsageError("the movement judge needs a folder of ordinary photos for its photo class"
                         f"{f' ({source} is not there)' if source else ''}; give --judge-photos DIR, or --no-judge")
    bar = _progress_factory(args)(desc="movement judge", unit="img")
    judge = build_judge(movements, root, list_images(source), photos, device, cache, bar.update,
                        others=not args.judge_movements)
    bar.close()
    log.info("movement judge: %s; cross-validated accuracy %.0f%%", ", ".join(judge.classifier.classes),
             100 * judge.classifier.accuracy)
    return judge


def cmd_models(args: argparse.Namespace) -> int:
    from .catalog import read_model_config, shipped_models

    shipped = shipped_models()
    if not shipped:
        print("no shipped models are installed; train your own with 'artstyle train'")
        return 0
    rows = []
    for name, folder in shipped.items():
        config = read_model_config(folder)
        trained = config.get("trained", {})
        paintings = trained.get("paintings", {})
        rows.append({
            "name": name,
            "movements": config["model"]["movements"],
            "channels": config["model"]["channels"],
            "paintings": {m: info.get("used") for m, info in paintings.items()},
            "photos": trained.get("photos_trained"),
            "steps": trained.get("steps"),
            "image_size": config["data"]["image_size"],
            "trained_on": f"{trained.get('device')} ({trained.get('precision')}), {trained.get('seconds')} s",
            "folder": str(folder),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        paintings = sum(n or 0 for n in row["paintings"].values())
        joint = f" (joint: {', '.join(row['movements'])})" if len(row["movements"]) > 1 else ""
        print(f"{row['name'] + joint:<24} {paintings:>4} paintings, {row['photos']} photos, "
              f"{row['steps']} steps at {row['image_size']} px, width {row['channels']}, on {row['trained_on']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .runtime import resolve_device

    if (Path(args.output) / "sheet.png").exists() and not args.overwrite:
        raise UsageError(f"{args.output} holds an earlier demo; use --overwrite to replace it, or -o another folder")
    sheet = run_demo(Path(args.output), resolve_device(args.device), steps=args.steps,
                     progress=_progress_factory(args), use_shipped=not args.tiny)
    log.info("demo sheet: %s", sheet)
    _emit(args, {"sheet": str(sheet)})
    return 0


COMMANDS = {"train": cmd_train, "stylize": cmd_stylize, "sheet": cmd_sheet, "evaluate": cmd_evaluate,
            "serve": cmd_serve, "video": cmd_video, "export": cmd_export, "models": cmd_models, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    try:
        if args.quiet:
            return COMMANDS[args.command](args)
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm(loggers=[logging.getLogger("artstyle")]):
            return COMMANDS[args.command](args)
    except ArtstyleError as err:
        print(f"artstyle: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:  # SIGTERM during training arrives as one too (exit code 143)
        print("artstyle: interrupted", file=sys.stderr)
        return int(getattr(err, "exit_code", 130))
    except MemoryError:
        print("artstyle: error: out of memory; use a smaller --size or --batch-size", file=sys.stderr)
        return 1
    except Exception as err:
        if args.debug:
            raise
        print(f"artstyle: internal error: {type(err).__name__}: {err} (run again with --debug for the "
              "traceback, and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
