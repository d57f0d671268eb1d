"""``artstyle distil``: a smaller, quicker network that paints what a trained model paints."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .common import (
    Formatter,
    common_options,
    count,
    emit,
    positive_float,
    positive_int,
    progress_factory,
    run_options,
    weight,
)


def add_parser(sub: Any) -> None:
    from ..config import DISTIL_CHANNELS, DISTIL_IMAGE_SIZE, DISTIL_TRAIN

    t = DISTIL_TRAIN
    p = sub.add_parser(
        "distil", formatter_class=Formatter, help="teach a smaller, quicker network a trained model's look",
        description="Train a narrower network (a student) to paint what MODEL paints, on ordinary photos: "
                    "it matches MODEL's output pixel by pixel and in VGG-19's first layers. It needs far "
                    "fewer steps than training the look from paintings, and the result paints like MODEL "
                    "at a fraction of its cost (8 channels: about an eighth of the full width's network time "
                    "on an AVX2 CPU). OUT gets model.safetensors, config.json, checkpoint.pt, losses.csv, "
                    "loss.png and preview.png (photo, MODEL, student).",
    )
    p.add_argument("model", metavar="MODEL", help="the teacher: a shipped model's name or a model folder")
    p.add_argument("--photos", required=True, nargs="+", metavar="PHOTOS",
                   help="ordinary photos to learn on: folders (searched recursively), text files listing photos, "
                        "or photos")
    p.add_argument("--out", required=True, help="the student's model folder")
    p.add_argument("--name", default=None, help="the student's name (default: MODEL's name with -fast)")
    g = p.add_argument_group("network")
    g.add_argument("--channels", type=positive_int, default=DISTIL_CHANNELS,
                   help="width of the student's first layer (the full models have 32)")
    g.add_argument("--residual-blocks", type=positive_int, default=5, help="the student's residual blocks")
    g.add_argument("--arch", choices=("johnson", "halfres"), default="johnson",
                   help="the student's network: johnson, the full models' shape; halfres, one that never "
                        "convolves at full resolution (the photo's 2x2 pixel blocks in, a colour for each "
                        "pixel of them out): at 8 channels, 0.6x johnson's network time in int8 on an AVX2 CPU")
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=positive_int, default=t.steps, help="optimisation steps")
    g.add_argument("--batch-size", type=positive_int, default=t.batch_size, help="photos per step")
    g.add_argument("--image-size", type=positive_int, default=DISTIL_IMAGE_SIZE,
                   help="side of the square photo crops, px")
    g.add_argument("--lr", type=positive_float, default=t.lr, help="Adam learning rate")
    g.add_argument("--feature-weight", type=weight, default=1.0,
                   help="weight of the VGG-19 feature match (relu1_1..relu3_1) beside the pixel match; 0: "
                        "pixels only, quicker per step but blurrier strokes")
    run_options(g, t)
    g.add_argument("--preview-photos", type=count, default=4, help="photos held out and shown in preview.png")
    g.add_argument("--workers", type=count, default=None,
                   help="threads decoding photos ahead of training (default: the CPU cores but one, up to 4)")
    g.add_argument("--resume", action="store_true", help="continue from OUT's last checkpoint")
    g.add_argument("--overwrite", action="store_true", help="start again, replacing an earlier run in OUT")
    common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..config import TrainConfig
    from ..runtime import resolve_device
    from ..training.distil import DistilRequest, distil

    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite contradict each other; choose one")
    request = DistilRequest(
        teacher=args.model, photos=tuple(Path(p) for p in args.photos), out=Path(args.out), name=args.name,
        channels=args.channels, residual_blocks=args.residual_blocks, arch=args.arch, image_size=args.image_size,
        preview_photos=args.preview_photos, feature_weight=args.feature_weight,
        train=TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                          precision=args.precision, checkpoint_every=args.checkpoint_every,
                          preview_every=args.preview_every),
        device=resolve_device(args.device), resume=args.resume, overwrite=args.overwrite,
        **({"workers": args.workers} if args.workers is not None else {}),
    )
    result = distil(request, progress=progress_factory(args))
    emit(args, {"name": result.name, "folder": str(result.folder), "steps": result.steps,
                "seconds": round(result.seconds, 1), "final_losses": result.final_losses})
    return 0
