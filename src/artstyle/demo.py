"""``artstyle demo``: stylize the bundled sample photo, training a tiny model first if none exists.

The tiny model learns a generated "movement" of warm brush strokes in about a minute on a CPU; it
proves the whole pipeline (VGG-19 targets, training, saving, loading, stylizing) on any machine.
"""

from __future__ import annotations

import importlib.resources
import logging
import tempfile
from pathlib import Path

import torch

from .checkpoint import is_model_folder
from .config import DataConfig, ModelConfig, RunConfig, TrainConfig, loss_preset
from .image import open_image, save_image
from .stylize import Stylizer, make_sheet
from .train import ProgressFactory, TrainRequest, _NoProgress, train

log = logging.getLogger(__name__)

DEMO_MOVEMENT = "demo_strokes"


def sample_photo_path() -> Path:
    """The bundled sample photo (Neuschwanstein Castle, CC0, by cameralends via Wikimedia Commons)."""
    return Path(str(importlib.resources.files("artstyle") / "assets" / "sample.jpg"))


def tiny_config(steps: int) -> RunConfig:
    return RunConfig(
        model=ModelConfig(channels=16, residual_blocks=3),
        loss=loss_preset("default"),
        data=DataConfig(image_size=96, style_size=128, min_paintings=1, preview_photos=2),
        train=TrainConfig(steps=steps, batch_size=4, lr=5e-3, seed=0, checkpoint_every=max(1, steps // 2),
                          preview_every=steps, log_every=5),
    )


def run_demo(out: Path, device: torch.device, steps: int = 60,
             progress: ProgressFactory = _NoProgress) -> Path:
    """Write ``out/sheet.png`` (sample photo beside its stylization) and return its path."""
    from .synthetic import write_dataset

    model_dir = out / "run" / DEMO_MOVEMENT
    if not is_model_folder(model_dir):
        log.info("no movement model yet: training a tiny demo model on generated images (%d steps)", steps)
        with tempfile.TemporaryDirectory(prefix="artstyle-demo-") as tmp:
            paintings, photos = write_dataset(Path(tmp), {DEMO_MOVEMENT: "ember"}, paintings=4, photos=8)
            request = TrainRequest(paintings=paintings, photos=photos, out=out / "run",
                                   config=tiny_config(steps), device=device, overwrite=True)
            train(request, progress=progress)
    stylizer = Stylizer.from_pretrained(model_dir, device)
    photo = open_image(sample_photo_path())
    save_image(stylizer(photo), out / "sample_stylized.png")
    sheet = out / "sheet.png"
    save_image(make_sheet(photo, [stylizer]), sheet)
    return sheet
