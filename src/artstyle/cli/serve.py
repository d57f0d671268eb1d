"""``artstyle serve``: the web page and the HTTP API."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ..errors import ArtstyleError
from .common import Formatter, common_options, engine_option, positive_int

log = logging.getLogger("artstyle")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", formatter_class=Formatter, help="the web page and HTTP API",
                       description="Serve a web page where people drop a photo and pick a movement, and the "
                                   "HTTP API behind it (OpenAPI schema at /docs). Needs: pip install "
                                   "'artstyle[web]'.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 exposes it to the network")
    p.add_argument("--port", type=positive_int, default=8000, help="port")
    p.add_argument("--model", "-m", action="append", default=None,
                   help="models to serve (names, folders or run folders; repeat; default: the shipped models)")
    p.add_argument("--max-upload-mb", type=positive_int, default=20, help="largest upload, MB (413 above)")
    p.add_argument("--max-megapixels", type=positive_int, default=40, help="largest photo, megapixels (413 above)")
    p.add_argument("--max-output-side", type=positive_int, default=2048, help="longest side of a result, px")
    p.add_argument("--workers", type=positive_int, default=1, help="stylizations running at once")
    p.add_argument("--queue", type=positive_int, default=16,
                   help="requests that may wait; more get 503 with a Retry-After of a second or more, so hold more "
                        "than a second of painting, or the queue drains while those refused wait")
    engine_option(p)
    common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..web.app import Limits, create_app

    try:
        import uvicorn
    except ImportError:
        raise ArtstyleError("the web page needs uvicorn: pip install 'artstyle[web]'") from None
    limits = Limits(max_upload_bytes=args.max_upload_mb * 2**20, max_pixels=args.max_megapixels * 1_000_000,
                    max_output_side=args.max_output_side, workers=args.workers, queue=args.queue)
    app = create_app(args.model, args.device, limits, engine=args.engine)
    log.info("serving on http://%s:%d (API schema at /docs); Ctrl-C stops", args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0
