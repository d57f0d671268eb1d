"""What the commands share: option types that refuse bad values in one line, the options every
command has, logging and progress, the --json summary, and the checks written once (an output
that exists, a reference that must name one model)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import UsageError

log = logging.getLogger("artstyle")


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults, except the uninformative ones (None, False) and those the help already gives."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def common_options(p: argparse.ArgumentParser) -> None:
    """The options of every command."""
    p.add_argument("--device", default="auto",
                   help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors; no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout when done")
    p.add_argument("--debug", action="store_true", help="show the full traceback of unexpected errors")


def run_options(g: Any, defaults: Any) -> None:
    """The options ``train`` and ``distil`` share: seed, precision, how often to checkpoint and
    preview; ``defaults`` is the command's TrainConfig."""
    from ..config import PRECISIONS

    g.add_argument("--seed", type=int, default=defaults.seed, help="random seed (CPU runs are reproducible)")
    g.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                   help="auto: bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere")
    g.add_argument("--checkpoint-every", type=positive_int, default=defaults.checkpoint_every,
                   help="steps between checkpoints")
    g.add_argument("--preview-every", type=positive_int, default=defaults.preview_every,
                   help="steps between preview.png refreshes")


def look_options(p: argparse.ArgumentParser) -> None:
    """How a movement is painted: which one of a joint model, how strongly, in whose colours."""
    p.add_argument("--movement", default=None, metavar="NAME[:W,...]",
                   help="for a joint model: the movement to paint, or a blend such as "
                        "baroque:0.5,impressionism:0.5 (weights are normalised)")
    p.add_argument("--strength", type=unit_float, default=1.0,
                   help="how much of the style, 0..1 (0 returns the photo)")
    p.add_argument("--preserve-color", action="store_true",
                   help="keep the photo's colours; take only the movement's light and texture")


def engine_option(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument("--engine", choices=("auto", "openvino", "torch"), default=default,
                   help="what runs the network. openvino: on the CPU without starting PyTorch, in bf16 where "
                        "the CPU has AMX, else in int8 (pip install 'artstyle[fast]'; the first use "
                        "of a model exports it once). torch: any device, joint models, --movement, --strength, "
                        "--preserve-color, tiles. auto: openvino for what it can paint when it is installed "
                        "and no GPU is in sight, torch for the rest; an .onnx file runs in ONNX Runtime")


# option types: each refuses a bad value with one line that says what it must be

def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_int(text: str) -> int:
    value = whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def count(text: str) -> int:
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def tile_size(text: str) -> int:
    from ..image import MIN_TILE

    value = count(text)
    if 0 < value < MIN_TILE:
        raise argparse.ArgumentTypeError(f"{value} px is too small: give at least {MIN_TILE} px, or 0 to paint whole")
    return value


def weight(text: str) -> float:
    value = number(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a number, 0 or more")
    return value


def positive_float(text: str) -> float:
    value = number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def unit_float(text: str) -> float:
    value = number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..1")
    return value


def float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def name_list(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one movement name")
    return names


# checks written once

def refuse_existing(paths: Path | Iterable[Path], overwrite: bool, what: str = "use --overwrite to replace it"
                    ) -> None:
    """``UsageError`` when an output exists and ``--overwrite`` was not given."""
    existing = [p for p in ([paths] if isinstance(paths, Path) else paths) if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise UsageError(f"{existing[0]} exists{more}; {what}")


def one_model(ref: str) -> Any:
    """The one model ``--model`` names (a ModelFolder); ``UsageError`` when it holds several."""
    from ..model_folder import ModelFolder

    return ModelFolder.from_pretrained(ref)


# logging, progress and the summary

def setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("artstyle: %(message)s"))
    root = logging.getLogger("artstyle")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def progress_factory(args: argparse.Namespace, log_interval: float = 30.0) -> Callable[..., Any]:
    """Progress bars on a terminal; without one (a log file, a scheduler), a log line at most every
    ``log_interval`` seconds; nothing with --quiet (without importing tqdm, which a quick
    ``stylize`` would notice)."""

    def factory(**kwargs: Any) -> Any:
        if args.quiet:
            return NoProgress()
        if not sys.stderr.isatty():
            return LogProgress(interval=log_interval, **kwargs)
        from tqdm import tqdm

        return tqdm(dynamic_ncols=True, unit_scale=False, smoothing=0.1, **kwargs)

    return factory


class NoProgress:
    """A progress bar that shows nothing."""

    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


class LogProgress:
    """A progress bar for logs: "desc: n/total unit (p%), elapsed, ETA" at most every ``interval`` s,
    and once at the end."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
                 interval: float = 30.0, clock: Callable[[], float] | None = None, **_: Any) -> None:
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
                line += f", ETA {duration(elapsed / done * (self.total - self.n))}"
        else:
            line += f" {self.unit}"
        line += f", {duration(elapsed)} elapsed"
        log.info("%s%s", line, f"; {self.postfix}" if self.postfix else "")
        self.last, self.logged = now, self.n


def duration(seconds: float) -> str:
    """``h:mm:ss``, or ``m:ss`` under an hour."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def emit(args: argparse.Namespace, summary: dict[str, Any] | list[Any]) -> None:
    """The --json summary, on stdout."""
    if args.json:
        print(json.dumps(summary, indent=2))
