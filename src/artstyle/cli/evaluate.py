"""``artstyle evaluate``: how much each model paints its movement, and how much photo it keeps."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .common import (
    Formatter,
    common_options,
    emit,
    engine_option,
    name_list,
    positive_int,
    progress_factory,
    refuse_existing,
)

log = logging.getLogger("artstyle")


def add_parser(sub: Any) -> None:
    from ..config import INFERENCE_PRECISIONS

    p = sub.add_parser("evaluate", formatter_class=Formatter,
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
    p.add_argument("--size", type=positive_int, default=512, metavar="PX", help="longest side of the photos, px")
    p.add_argument("--judge-photos", default=None, metavar="DIR",
                   help="ordinary photos for the classifier's photo class, at least 10 (default: the photos "
                        "folder the first model was trained on); the photos being evaluated are left out")
    p.add_argument("--judge-movements", type=name_list, default=None, metavar="NAME[=FOLDER+...],...",
                   help="the classifier's movements, as 'artstyle train --movements' takes them (default: the "
                        "models' movements and every other folder of at least 10 paintings beside them)")
    p.add_argument("--no-judge", action="store_true",
                   help="skip the movement classifier and retrieval; only the VGG distances and speed")
    p.add_argument("--cache-dir", default=None, help="where style targets and the classifier are cached")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report")
    engine_option(p, default="torch")
    p.add_argument("--precision", choices=INFERENCE_PRECISIONS, default="auto",
                   help="number format of the networks, as 'artstyle stylize --precision' takes it: compare "
                        "a fast path's measure with fp32's")
    common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..config import default_cache_dir
    from ..engines import load
    from ..evaluate import evaluate
    from ..image import iter_inputs, save_image
    from ..model_folder import resolve_models
    from ..runtime import resolve_device
    from ..training.checkpoint import write_json

    out = Path(args.output)
    refuse_existing(out / "report.json", args.overwrite)
    device = resolve_device(args.device)
    photos = iter_inputs(args.photos)
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    paintings = Path(args.paintings) if args.paintings else None
    report: dict[str, Any] = {"photos": [str(p) for p in photos], "size": args.size, "device": str(device),
                              "models": []}
    stylizers = [load(model, engine=args.engine, device=args.device, precision=args.precision)
                 for model in resolve_models(args.model)]
    judge = None if args.no_judge else _build_judge(args, stylizers, photos, paintings, device, cache)
    if judge is not None:
        report["judge"] = {"classes": judge.classifier.classes, "cross_validated_accuracy":
                           round(judge.classifier.accuracy, 4)}
    sheets: dict[Path, Any] = {}  # written with the report, once every model is done: no partial results
    for stylizer in stylizers:
        scores, sheet = evaluate(stylizer, photos, paintings, size=args.size, cache_dir=cache, judge=judge,
                                 device=device)
        folder = stylizer.model.path
        sheet_path = out / f"{stylizer.name}_sheet.png"
        if sheet_path in sheets and folder is not None:  # two models of one name
            sheet_path = out / f"{folder.parent.name}_{stylizer.name}_sheet.png"
        sheets[sheet_path] = sheet
        report["models"].append({"model": stylizer.name, "folder": str(folder), "sheet": str(sheet_path),
                                 "engine": stylizer.engines_used(), "precision": stylizer.precision,
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
    emit(args, report)
    return 0


def _build_judge(args: argparse.Namespace, stylizers: Sequence[Any], photos: Sequence[Path],
                 paintings: Path | None, device: Any, cache: Path) -> Any:
    """The movement classifier: the models' movements, the other movement folders beside them, and a
    photo class."""
    from ..evaluate import build_judge, paintings_folders
    from ..image import list_images
    from ..training.data import movement_folders, parse_movement

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
    trained = stylizers[0].model.trained
    source = args.judge_photos or (trained.photos_folder if trained else None)
    if not source or not Path(source).is_dir():
        raise UsageError("the movement judge needs a folder of ordinary photos for its photo class"
                         f"{f' ({source} is not there)' if source else ''}; give --judge-photos DIR, or --no-judge")
    bar = progress_factory(args)(desc="movement judge", unit="img")
    judge = build_judge(movements, root, list_images(source), photos, device, cache, bar.update,
                        others=not args.judge_movements)
    bar.close()
    log.info("movement judge: %s; cross-validated accuracy %.0f%%", ", ".join(judge.classifier.classes),
             100 * judge.classifier.accuracy)
    return judge
