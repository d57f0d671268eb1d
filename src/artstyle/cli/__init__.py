"""The ``artstyle`` command: a thin layer over the Python API, one module per command (each parser
beside its handler), and what they share in ``common``.

Heavy modules (torch, training) are imported inside the handlers, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import ArtstyleError
from . import demo, distil, evaluate, export, models, serve, stylize, train, video
from .common import Formatter, setup_logging

EPILOG = """\
examples:
  artstyle demo                                         the sample photo in every shipped movement
  artstyle stylize photo.jpg --model baroque -o photo_baroque.png
  artstyle stylize photo.jpg --model baroque-fast        the quarter-width copy, quicker on a CPU
  artstyle sheet photo.jpg -o sheet.png                 every shipped movement side by side
  artstyle train paintings/ --photos photos/ --movements baroque,cubism --out runs/first
  artstyle stylize photos/ --model runs/first/cubism -o stylized/ --size 1024
  artstyle distil runs/first/cubism --photos photos/ --out runs/first/cubism-fast   a quicker copy
  artstyle serve                                         the web page on http://127.0.0.1:8000
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="artstyle",
        description="Learn the look of art movements from folders of their paintings, "
                    "and apply it to photos in milliseconds.",
        epilog=EPILOG, formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"artstyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    train.add_parser(sub)
    distil.add_parser(sub)
    stylize.add_parsers(sub)
    for command in (evaluate, serve, video, export, models, demo):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args)
    try:
        if args.quiet or not sys.stderr.isatty():  # no tqdm bars, so no log lines to keep off them
            return int(args.run(args))
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm(loggers=[logging.getLogger("artstyle")]):
            return int(args.run(args))
    except ArtstyleError as err:
        print(f"artstyle: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:  # SIGTERM during training arrives as one too (exit code 143)
        print("artstyle: interrupted", file=sys.stderr)
        return int(getattr(err, "exit_code", 130))
    except BrokenPipeError:  # whoever read the output stopped early (artstyle models | head): no error
        try:  # so that Python's own flush of stdout at exit does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 0
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
