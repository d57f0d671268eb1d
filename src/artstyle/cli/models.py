"""``artstyle models``: the shipped movement models and what they were trained on."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import Formatter, common_options


def add_parser(sub: Any) -> None:
    p = sub.add_parser("models", formatter_class=Formatter, help="list the shipped movement models",
                       description="List the models that come with artstyle, with what they were trained on. "
                                   "Use their names with --model.")
    common_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..model_folder import ModelFolder, shipped_models

    shipped = shipped_models()
    if not shipped:
        print("no shipped models are installed; train your own with 'artstyle train'")
        return 0
    rows: list[dict[str, Any]] = []
    for name, folder in shipped.items():
        model = ModelFolder.read(folder)
        trained = model.trained
        rows.append({
            "name": name,
            "movements": list(model.movements),
            "channels": model.config.model.channels,
            "paintings": {m: p.used for m, p in trained.paintings.items()} if trained else {},
            "photos": trained.photos_trained if trained else None,
            "steps": trained.steps if trained else None,
            "image_size": model.config.data.image_size,
            "trained_on": f"{trained.device} ({trained.precision}), {trained.seconds} s" if trained else None,
            "distilled_from": trained.distilled.teacher if trained and trained.distilled else None,
            "folder": str(folder),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        paintings = sum(n or 0 for n in row["paintings"].values())
        joint = f" (joint: {', '.join(row['movements'])})" if len(row["movements"]) > 1 else ""
        how = (f"distilled from {row['distilled_from']} ({paintings} paintings) on {row['photos']} photos"
               if row["distilled_from"] else f"{paintings:>4} paintings, {row['photos']} photos")
        print(f"{row['name'] + joint:<24} {how}, {row['steps']} steps at {row['image_size']} px, "
              f"width {row['channels']}, on {row['trained_on']}")
    return 0
