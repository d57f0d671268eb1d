"""``artstyle evaluate``: how much a model paints like its movement, and how much photo it keeps.

For each movement of a model and each photo (photos the model never saw):

* style distance: the relative Gram distance (as in the style loss, unweighted, summed over the
  style layers) from the stylized photo to the movement's target, divided by the same distance
  from the original photo. Below 1 means closer to the movement than the photo was; lower is
  more of the movement.
* content distance: the relative VGG feature distance at the content layer between the stylized
  photo and the photo (0 = the same features, 1 = as far as a blank image). Lower keeps more photo.
* seconds per image: the network's own time (median), on the chosen device, at the chosen size.

And, by an independent judge (:mod:`artstyle.judge`: a movement classifier on the features of a
network that is not the training loss network):

* called its movement: the share of outputs the judge assigns to the model's movement;
* called a photo: the share it assigns to its class of ordinary photos;
* content retrieval: the share of outputs whose nearest photo, among all the evaluated photos
  (by the judge's content features), is their own: a style that erases the photo scores low.

Targets are rebuilt exactly as training built them (same paintings, sizes, views, seed and VGG
weights) and cached.
"""

from __future__ import annotations

import hashlib
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .engines.base import Stylizer
from .errors import ImageError, UsageError
from .image import image_grid, list_images, open_image, resize_max, to_pil, to_tensor
from .judge import (
    PHOTO_CLASS,
    EfficientNetLite0,
    MovementClassifier,
    build_classifier,
    describe_image,
    retrieval_accuracy,
)
from .training.data import Skipped
from .training.losses import content_loss, gram_matrix, style_loss
from .training.targets import movement_target
from .training.vgg import VGG19Encoder, deepest, load_vgg19

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MovementScores:
    movement: str
    style_distance: float  # outputs' Gram distance to the target / photos' own distance
    style_distance_raw: float  # outputs' Gram distance to the target
    photo_style_distance_raw: float  # the photos' Gram distance to the target
    content_distance: float
    seconds_per_image: float
    called_movement: float | None = None  # share of outputs the judge calls this movement
    called_photo: float | None = None  # share of outputs the judge calls a photo
    retrieval: float | None = None  # share of outputs nearest to their own photo
    called: dict[str, float] = field(default_factory=dict)  # share of outputs per judged class

    def as_dict(self) -> dict[str, Any]:
        def rounded(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: rounded(x) for k, x in v.items()}
            return round(v, 4) if isinstance(v, float) else v

        return {k: rounded(v) for k, v in self.__dict__.items()}


def paintings_folders(stylizer: Stylizer, movement: str, paintings_root: Path | None) -> list[Path]:
    """The folders of the movement's paintings, as recorded by training (a movement may join
    several); under ``paintings_root`` instead when given."""
    names = stylizer.model.paintings(movement).folders
    if paintings_root is not None:
        folders = [paintings_root / Path(n).name for n in names] or [paintings_root / movement]
    elif names:
        folders = [Path(n) for n in names]
    else:
        raise UsageError(f"the model does not record where {movement}'s paintings are; give --paintings DIR")
    for folder in folders:
        if not folder.is_dir():
            where = "are not there" if paintings_root else "are not where training found them"
            raise UsageError(f"{folder}: the paintings of {movement} {where}; give --paintings DIR "
                             f"(the folder holding one sub-folder per movement, {movement}/ among them)")
    return folders


@dataclass
class Judge:
    """The independent movement classifier and its feature network, on a device."""

    net: EfficientNetLite0
    classifier: MovementClassifier
    device: torch.device
    pictures: dict[str, int]  # pictures per class the classifier was trained on


def judge_classes(movements: dict[str, list[Path]], paintings_root: Path, judge_photos: Sequence[Path],
                  min_paintings: int = 10, others: bool = True) -> dict[str, list[Path]]:
    """The judge's classes: the evaluated movements (each from its folders), then (``others``) every
    other movement folder of ``paintings_root`` with at least ``min_paintings`` paintings, then the photos."""
    used = {folder.resolve() for folders in movements.values() for folder in folders}
    classes = {name: sorted(p for f in folders for p in list_images(f)) for name, folders in movements.items()}
    if others and paintings_root.is_dir():
        for folder in sorted(paintings_root.iterdir()):
            if folder.is_dir() and folder.resolve() not in used and folder.name not in classes:
                paths = list_images(folder)
                if len(paths) >= min_paintings:
                    classes[folder.name] = paths
    classes[PHOTO_CLASS] = list(judge_photos)
    return classes


def build_judge(movements: dict[str, list[Path]], paintings_root: Path, judge_photos: Sequence[Path],
                exclude: Sequence[Path], device: torch.device, cache_dir: Path | None,
                progress: Callable[[int], object] | None = None, others: bool = True) -> Judge:
    """A judge for ``movements`` (name -> folders), and (``others``) the other movement folders of
    ``paintings_root``. Photos whose bytes equal one of ``exclude`` (the photos being evaluated) are
    left out of its photo class, so it never judges what it learned."""
    from .judge import load_feature_network

    photos = photos_not_evaluated(judge_photos, exclude)
    if len(photos) < 10:
        raise UsageError(f"the judge needs at least 10 photos that are not being evaluated for its photo class, "
                         f"found {len(photos)}; give --judge-photos DIR")
    net = load_feature_network().to(device)
    classes = judge_classes(movements, paintings_root, photos, others=others)
    classifier = build_classifier(classes, net, device, cache_dir, progress)
    return Judge(net, classifier, device, {name: len(paths) for name, paths in classes.items()})


def photos_not_evaluated(judge_photos: Sequence[Path], exclude: Sequence[Path]) -> list[Path]:
    """The judge's photos, less those whose bytes equal one of ``exclude`` (the photos being evaluated)."""
    excluded = {_digest(p) for p in exclude}
    return [p for p in judge_photos if _digest(p) not in excluded]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evaluate(
    stylizer: Stylizer,
    photos: Sequence[Path],
    paintings_root: Path | None,
    size: int = 512,
    cache_dir: Path | None = None,
    vgg: VGG19Encoder | None = None,
    judge: Judge | None = None,
    device: torch.device | None = None,
) -> tuple[list[MovementScores], Image.Image]:
    """Scores for each movement of the model on ``photos``, and a sheet (photo | each movement).

    Args:
        stylizer: the model to score.
        photos: photo files the model never saw.
        paintings_root: where the movements' paintings are (default: the folders the model records).
        size: longest side of the photos, px.
        cache_dir: where style targets are cached.
        vgg: the loss network, when the caller has it loaded already.
        judge: the independent movement classifier (:func:`build_judge`); without it, the
            called-movement, called-photo and retrieval scores are left out.
        device: where the loss network runs and the photos go (default: the CPU).
    """
    loss, data, seed = stylizer.model.config.loss, stylizer.model.config.data, stylizer.model.config.train.seed
    device = device or torch.device("cpu")
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
    photo_content = None
    if judge is not None:
        photo_content = torch.cat([describe_image(judge.net, im, judge.device).content for im in images])
    scores, columns = [], []
    for movement in stylizer.movements:
        folders = paintings_folders(stylizer, movement, paintings_root)
        paths = sorted(p for folder in folders for p in list_images(folder))
        target, _ = movement_target(paths, vgg, loss, data, seed, device, cache_dir, Skipped())
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
        score = MovementScores(movement, raw / photo_raw, raw, photo_raw, statistics.fmean(content),
                               statistics.median(seconds))
        if judge is not None and photo_content is not None:
            score = judged(score, outs, photo_content, judge)
        scores.append(score)
        columns.append(outs)
    rows = [[im, *(col[i] for col in columns)] for i, im in enumerate(images)]
    sheet = image_grid(rows, labels=["photo", *stylizer.movements], cell=256)
    return scores, sheet


def judged(score: MovementScores, outputs: Sequence[Image.Image], photo_content: torch.Tensor,
           judge: Judge) -> MovementScores:
    """``score`` with the judge's verdicts on the ``outputs`` (in the order of the photos)."""
    feats = [describe_image(judge.net, im, judge.device) for im in outputs]
    calls = judge.classifier.predict(torch.cat([f.style for f in feats]))
    share = {c: calls.count(c) / len(calls) for c in judge.classifier.classes}
    retrieval = retrieval_accuracy(torch.cat([f.content for f in feats]).cpu(), photo_content.cpu())
    return replace(score, called_movement=share.get(score.movement, 0.0), called_photo=share[PHOTO_CLASS],
                   retrieval=retrieval, called={c: v for c, v in share.items() if v > 0})
