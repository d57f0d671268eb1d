"""Which movement does each model paint? Style distance of every model's outputs to every target.

For photos the models never saw: each model's outputs, and their Gram distance (as in
``artstyle evaluate``, relative to the photos' own distance) to each movement's style target.
A model that paints its own movement has the lowest distance to its own target in its row.
Usage: python scripts/movement_matrix.py PHOTOS_DIR PAINTINGS_DIR MODEL...
"""

import json
import sys
from pathlib import Path

import torch

from artstyle import load
from artstyle.config import default_cache_dir
from artstyle.image import iter_inputs, list_images, open_image, resize_max, to_tensor
from artstyle.model_folder import resolve_models
from artstyle.training.data import Skipped
from artstyle.training.losses import gram_matrix, style_loss
from artstyle.training.targets import movement_target
from artstyle.training.vgg import load_vgg19


def main(photos_dir: str, paintings_dir: str, *refs: str) -> None:
    stylizers = [load(m, engine="torch") for m in resolve_models(refs)]
    run = stylizers[0].model.config
    loss, data, seed = run.loss, run.data, run.train.seed
    vgg = load_vgg19(loss.vgg_weights, "relu5_1")
    photos = [to_tensor(resize_max(open_image(p), 512)) for p in iter_inputs([photos_dir])]
    movements = list(dict.fromkeys(s.movements[0] for s in stylizers))  # baroque-fast paints baroque
    targets = {}
    for m in movements:
        targets[m] = movement_target(list_images(Path(paintings_dir) / m), vgg, loss, data, seed,
                                     torch.device("cpu"), default_cache_dir(), Skipped())[0].grams

    def distance(x: torch.Tensor, target: dict[str, torch.Tensor]) -> float:
        with torch.no_grad():
            feats = vgg(x, loss.style_layers)
        return sum(style_loss(gram_matrix(feats[k]), target[k]).item() for k in loss.style_layers)

    matrix = {}
    for s in stylizers:
        outs = [s.stylize_tensor(p) for p in photos]
        row = {}
        for m in movements:
            own = sum(distance(o, targets[m]) for o in outs)
            base = sum(distance(p, targets[m]) for p in photos)
            row[m] = round(own / base, 4)
        matrix[s.name] = row
    print(json.dumps(matrix, indent=2))


if __name__ == "__main__":
    main(*sys.argv[1:])
