"""``artstyle train``: one model per movement (or one joint network), from a folder of paintings
and photos."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .common import (
    Formatter,
    common_options,
    count,
    emit,
    float_list,
    name_list,
    positive_float,
    positive_int,
    progress_factory,
    run_options,
    weight,
)


def add_parser(sub: Any) -> None:
    from ..config import (
        LOSS_PRESETS,
        PHOTO_LOADERS,
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
        "train", formatter_class=Formatter, help="train one model per movement",
        description="Train one fast stylizer network per art movement. PAINTINGS_DIR holds one "
                    "sub-folder per movement (root/<movement>/*.jpg, the WikiArt layout). Each movement "
                    "gets OUT/<movement>/ with model.safetensors, config.json, checkpoint.pt, losses.csv, "
                    "loss.png and preview.png.",
    )
    p.add_argument("paintings", metavar="PAINTINGS_DIR", help="folder with one sub-folder of paintings per movement")
    p.add_argument("--photos", required=True, nargs="+", metavar="PHOTOS",
                   help="ordinary photos to train on: folders (searched recursively), text files listing photos "
                        "(one path per line, relative to the file), or photos")
    p.add_argument("--movements", type=name_list, default=None,
                   help="comma-separated movements to train (default: every movement with at least "
                        "--min-paintings paintings); NAME=FOLDER+FOLDER makes one movement of several "
                        "folders, e.g. modern_art=abstract+fauvism+futurism,baroque")
    p.add_argument("--out", default=None, help="run folder (default: runs/<name of PAINTINGS_DIR>)")
    p.add_argument("--joint", action="store_true",
                   help="train ONE network for all the movements (conditional instance norm), in OUT/joint; "
                        "it can blend movements at stylize time")
    p.add_argument("--joint-name", default="joint", help="folder name of the --joint network inside OUT")
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=positive_int, default=t.steps, help="optimisation steps per movement")
    g.add_argument("--batch-size", type=positive_int, default=t.batch_size, help="photos per step")
    g.add_argument("--lr", type=positive_float, default=t.lr, help="Adam learning rate")
    g.add_argument("--lr-step", type=count, default=t.lr_step,
                   help="steps between learning-rate drops (0: one drop at 3/4 of the run)")
    g.add_argument("--lr-gamma", type=positive_float, default=t.lr_gamma, help="factor of each learning-rate drop")
    run_options(g, t)
    g.add_argument("--compile", action="store_true",
                   help="compile the training step (torch.compile): faster steps after a compile of tens of "
                        "seconds, so worth it for long runs on a GPU (benchmarks/README.md has figures)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint; stops if there is none")
    g.add_argument("--resume-or-start", action="store_true",
                   help="resume where there is a checkpoint, else start (with a warning): one command for a "
                        "first start and for every restart after a preemption")
    g.add_argument("--overwrite", action="store_true", help="start again, replacing an earlier run in --out")
    g.add_argument("--init-from", metavar="MODEL", default="",
                   help="start from this model's weights instead of random ones, to fine-tune it: a shipped "
                        "model's name (artstyle models) or a model folder; its network must have this run's "
                        "--channels and --residual-blocks")
    g = p.add_argument_group("data")
    g.add_argument("--image-size", type=positive_int, default=d.image_size, help="side of the square photo crops, px")
    g.add_argument("--style-size", type=positive_int, default=d.style_size,
                   help="shorter side paintings are resized to for the style target, px")
    g.add_argument("--max-paintings", type=positive_int, default=d.max_paintings,
                   help="paintings per movement averaged into its style (drawn at random)")
    g.add_argument("--style-views", type=positive_int, default=d.style_views,
                   help="at least this many views of the paintings make the style target; a movement with "
                        "fewer paintings gets several random crops and scales of each (1: whole paintings only)")
    g.add_argument("--min-paintings", type=positive_int, default=d.min_paintings,
                   help="without --movements, skip movements with fewer paintings")
    g.add_argument("--photo-loader", choices=PHOTO_LOADERS, default=d.photo_loader,
                   help=f"memory: decode every photo before the first step and keep them (quickest for a few "
                        f"thousand); stream: decode them as training goes, in --workers threads, in bounded "
                        f"memory whatever their number; auto: stream above {STREAM_FROM} photos")
    g.add_argument("--workers", type=count, default=None,
                   help="threads decoding photos (and paintings) ahead of training (0: none, decode in turn; "
                        "default: the CPU cores but one, up to 4)")
    g.add_argument("--preview-photos", type=count, default=d.preview_photos,
                   help="photos held out of training and shown in preview.png")
    g.add_argument("--cache-dir", default=None,
                   help="where style targets are cached (default: $ARTSTYLE_CACHE or ~/.cache/artstyle)")
    g = p.add_argument_group("loss")
    g.add_argument("--preset", choices=tuple(LOSS_PRESETS), default="default",
                   help="named loss settings (see the README): default and gram (the mean Gram matrix at "
                        "weight 0.5), sliced (the sliced style loss at weight 5, the default of two earlier "
                        "rounds, better for modern_art), original-light, original-heavy (the seed project's); "
                        "the options below override it")
    g.add_argument("--style-loss", choices=STYLE_LOSSES, default=None,
                   help=f"what the style loss matches (default {lc.style_loss}): gram, the paintings' mean Gram "
                        "matrix (their average palette and texture), or sliced, the distribution of their VGG "
                        "features (sliced Wasserstein: keeps a movement's several looks instead of their mean)")
    g.add_argument("--content-layer", default=None, choices=VGG_RELU_LAYERS, metavar="LAYER",
                   help=f"VGG layer of the content loss (default {lc.content_layer}; relu2_2 keeps more detail)")
    g.add_argument("--content-weight", type=positive_float, default=None, help=f"(default {lc.content_weight:g})")
    g.add_argument("--style-weight", type=positive_float, default=None, help=f"(default {lc.style_weight:g})")
    g.add_argument("--style-layer-weights", type=float_list, default=None,
                   help="comma-separated weights of relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 "
                        f"(default {','.join(f'{w:g}' for w in lc.style_layer_weights)})")
    g.add_argument("--tv-weight", type=weight, default=None, help=f"total-variation weight (default {lc.tv_weight:g})")
    g.add_argument("--adversarial-weight", type=weight, default=None,
                   help=f"weight of a movement critic, a patch discriminator trained on crops of the movement's "
                        f"paintings against the outputs (default {lc.adversarial_weight:g}: none); slower per "
                        "step, and it needs thousands of steps to pay; one movement at a time")
    g.add_argument("--contrast", type=weight, default=None,
                   help=f"push the mean-Gram style target away from other movements' by this much: the target "
                        "is own + CONTRAST x (own - theirs), so what the movement shares with them (the dark, "
                        "warm grounds of baroque, renaissance and romanticism) counts less and what sets it "
                        f"apart more (default {lc.contrast:g}: off; try 0.5 to 1)")
    g.add_argument("--contrast-with", type=name_list, default=None, metavar="MOVEMENTS",
                   help="comma-separated movements --contrast pushes away from, as in --movements (default: "
                        "every other movement folder with at least --min-paintings paintings)")
    g.add_argument("--vgg", default=lc.vgg_weights,
                   help="loss network weights: oxford (bundled, offline), torchvision (downloads), or a file")
    g = p.add_argument_group("network")
    g.add_argument("--channels", type=positive_int, default=m.channels, help="width of the first layer")
    g.add_argument("--residual-blocks", type=positive_int, default=m.residual_blocks, help="residual blocks")
    common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..config import DataConfig, ModelConfig, RunConfig, TrainConfig, default_cache_dir, loss_preset
    from ..training import distributed
    from ..training.loop import TrainRequest, train

    loss = loss_preset(
        args.preset, style_loss=args.style_loss, content_layer=args.content_layer, content_weight=args.content_weight,
        style_weight=args.style_weight, style_layer_weights=args.style_layer_weights,
        tv_weight=args.tv_weight, adversarial_weight=args.adversarial_weight, vgg_weights=args.vgg,
        contrast=args.contrast, contrast_with=tuple(args.contrast_with) if args.contrast_with else None,
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
                          checkpoint_every=args.checkpoint_every, preview_every=args.preview_every,
                          init_from=args.init_from),
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
        results = train(request, progress=progress_factory(args))
    finally:
        distributed.shutdown()
    if not main_process:
        return 0
    emit(args, {"out": str(out), "models": [
        {"name": r.name, "folder": str(r.folder), "steps": r.steps, "seconds": round(r.seconds, 1),
         "final_losses": r.final_losses} for r in results]})
    return 0
