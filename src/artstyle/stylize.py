"""Inference: apply trained movement models to images. Light on purpose: no VGG, no losses, no data.

>>> stylizer = Stylizer.from_pretrained("runs/paintings/baroque")
>>> stylizer(open_image("photo.jpg")).save("baroque.png")
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from .checkpoint import is_model_folder, load_model
from .errors import ModelError, UsageError
from .image import image_grid, iter_inputs, resize_max, to_pil, to_tensor

log = logging.getLogger(__name__)


class Stylizer:
    """A loaded movement model on a device; call it on PIL images or (N, 3, H, W) tensors."""

    def __init__(self, model: nn.Module, config: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config = config

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: torch.device | str = "cpu") -> Stylizer:
        model, config = load_model(folder)
        return cls(model, config, device)

    @property
    def movement(self) -> str:
        return str(self.config.get("movement") or "+".join(self.config["model"]["movements"]))

    @torch.inference_mode()
    def stylize_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1], on the input's device."""
        return self.model(images.to(self.device)).to(images.device)

    def __call__(self, image: Image.Image, size: int | None = None) -> Image.Image:
        """Stylize one PIL image; ``size`` bounds the longest side of the output (px)."""
        image = resize_max(image.convert("RGB"), size)
        return to_pil(self.stylize_tensor(to_tensor(image)))


def expand_model_refs(refs: Iterable[str | Path]) -> list[Path]:
    """Model folders from references: a model folder, or a run folder holding several of them."""
    folders: list[Path] = []
    for ref in refs:
        path = Path(ref)
        if is_model_folder(path):
            folders.append(path)
        elif path.is_dir() and (inner := sorted(p for p in path.iterdir() if is_model_folder(p))):
            folders.extend(inner)
        elif not path.exists():
            raise ModelError(f"{ref}: no such model folder; give a folder written by 'artstyle train'")
        else:
            raise ModelError(f"{ref}: not a model folder (no model.safetensors + config.json in it "
                             "or in its sub-folders)")
    return folders


def plan_outputs(inputs: Sequence[str | Path], output: str | Path | None, suffix: str = ".png",
                 default_dir: str | Path = "stylized") -> list[tuple[Path, Path]]:
    """Pair each input image with its output path.

    One input file and ``-o FILE`` (with an image suffix): that file. Otherwise ``-o DIR`` (default
    ``stylized/``) receives ``DIR/<input stem>.png`` for each input.
    """
    paths = iter_inputs(inputs)
    single_file = len(paths) == 1 and len(inputs) == 1 and Path(inputs[0]).is_file()
    if output is not None and single_file and Path(output).suffix and not Path(output).is_dir():
        return [(paths[0], Path(output))]
    out_dir = Path(output) if output is not None else Path(default_dir)
    if out_dir.suffix and not out_dir.is_dir() and len(paths) > 1:
        raise UsageError(f"-o {out_dir}: {len(paths)} inputs need an output folder, not a file name")
    pairs = [(p, out_dir / f"{p.stem}{suffix}") for p in paths]
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        if dst in seen:
            raise UsageError(f"{src} and {seen[dst]} would both be written to {dst}; stylize them separately")
        seen[dst] = src
    return pairs


def make_sheet(photo: Image.Image, stylizers: Sequence[Stylizer], size: int | None = 512,
               cell: int = 384) -> Image.Image:
    """The photo beside its stylization by each model, labelled with the movements, as one image."""
    photo = resize_max(photo, size)
    results = [s(photo) for s in stylizers]
    return image_grid([[photo, *results]], labels=["original", *(s.movement for s in stylizers)], cell=cell)
