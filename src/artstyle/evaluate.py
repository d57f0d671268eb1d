"""``artstyle evaluate``: how much a model paints like its movement, and how much photo it keeps.

For each movement of a model and each photo (photos the model never saw):

* style distance: the relative Gram distance (as in the style loss, unweighted, summed over the
  style layers) from the stylized photo to the movement's target, divided by the same distance
  from the original photo. Below 1 means closer to the movement than the photo was; lower is
  more of the movement.
* content distance: the relative VGG feature distance at the content layer between the stylized
  photo and the photo (0 = the same features, 1 = as far as a blank image). Lower keeps more photo.
* seconds per image: the network's own time (median), on the chosen device, at the chosen size.

Targets are rebuilt exactly as training built them (same paintings, sizes, views, seed and VGG
weights) and cached.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .config import DataConfig, LossConfig, from_dict
from .data import Skipped
from .errors import ImageError, UsageError
from .image import image_grid, list_images, open_image, resize_max, to_pil, to_tensor
from .losses import content_loss, gram_matrix, style_loss
from .stylize import Stylizer
from .targets import movement_target
from .vgg import VGG19Encoder, deepest, load_vgg19

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MovementScores:
    movement: str
    style_distance: float  # outputs' Gram distance to the target / photos' own distance
    style_distance_raw: float  # outputs' Gram distance to the target
    photo_style_distance_raw: float  # the photos' Gram distance to the target
    content_distance: float
    seconds_per_image: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def paintings_folder(stylizer: Stylizer, movement: str, paintings_root: Path | None) -> Path:
    """Where the movement's paintings are: ``paintings_root/<movement>`` or the recorded folder."""
    if paintings_root is not None:
        folder = paintings_root / movement
    else:
        recorded = stylizer.config.get("trained", {}).get("paintings", {}).get(movement, {}).get("folder")
        if not recorded:
            raise UsageError(f"the model does not record where {movement}'s paintings are; give --paintings DIR")
        folder = Path(recorded)
    if not folder.is_dir():
        raise UsageError(f"{folder}: the paintings of {movement} are not there; give --paintings DIR "
                         "(the folder holding one sub-folder per movement)")
    return folder


def evaluate(
    stylizer: Stylizer,
    photos: Sequence[Path],
    paintings_root: Path | None,
    size: int = 512,
    cache_dir: Path | None = None,
    vgg: VGG19Encoder | None = None,
) -> tuple[list[MovementScores], Image.Image]:
    """Scores for each movement of the model on ``photos``, and a sheet (photo | each movement)."""
    loss = from_dict(LossConfig, stylizer.config["loss"])
    data = from_dict(DataConfig, stylizer.config["data"])
    seed = int(stylizer.config["train"]["seed"])
    device = stylizer.device
    layers = [*loss.style_layers, loss.content_layer]
    vgg = vgg or load_vgg19(loss.vgg_weights, deepest(layers)).to(device)
    images = []
    for path in photos:
        try:
            images.append(resize_max(open_image(path), size))
        except ImageError as err:
            log.warning("skipped %s", err)
    if not images:
        raise UsageError("no readable photos to evaluate on")
    photo_feats = []
    with torch.no_grad():
        for im in images:
            photo_feats.append(vgg(to_tensor(im).to(device), layers))
    scores, columns = [], []
    for movement in stylizer.movements:
        folder = paintings_folder(stylizer, movement, paintings_root)
        target, _ = movement_target(list_images(folder), vgg, loss, data, seed, device, cache_dir, Skipped())
        grams = {k: v.to(device) for k, v in target.grams.items()}
        choice = movement if stylizer.conditional else None
        outs, seconds, out_style, photo_style, content = [], [], [], [], []
        for im, feats in zip(images, photo_feats, strict=True):
            x = to_tensor(im).to(device)
            stylizer.stylize_tensor(x, choice)  # warm-up, so the timing is the steady state
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            y = stylizer.stylize_tensor(x, choice)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
            outs.append(to_pil(y))
            with torch.no_grad():
                out_feats = vgg(y, layers)
            out_style.append(sum(style_loss(gram_matrix(out_feats[k]), grams[k]).item() for k in loss.style_layers))
            photo_style.append(sum(style_loss(gram_matrix(feats[k]), grams[k]).item() for k in loss.style_layers))
            content.append(content_loss(out_feats[loss.content_layer], feats[loss.content_layer]).item())
        raw, photo_raw = statistics.fmean(out_style), statistics.fmean(photo_style)
        scores.append(MovementScores(movement, raw / photo_raw, raw, photo_raw, statistics.fmean(content),
                                     statistics.median(seconds)))
        columns.append(outs)
    rows = [[im, *(col[i] for col in columns)] for i, im in enumerate(images)]
    sheet = image_grid(rows, labels=["photo", *stylizer.movements], cell=256)
    return scores, sheet
