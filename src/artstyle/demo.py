"""``artstyle demo``: stylize the bundled sample photo with every shipped movement model.

Without shipped models (a trimmed install), it first trains a tiny model on a generated "movement"
of warm brush strokes, in about a minute on a CPU: that proves the whole pipeline (VGG-19 targets,
training, saving, loading, stylizing) on any machine.
"""

from __future__ import annotations

import importlib.resources
import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from .config import DataConfig, ModelConfig, RunConfig, TrainConfig, loss_preset
from .engines import load
from .image import open_image, save_image
from .model_folder import is_model_folder, shipped_models
from .sheet import make_sheet

if TYPE_CHECKING:
    from .training.loop import ProgressFactory

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


def run_demo(out: Path, device: Any = "auto", steps: int = 60, progress: ProgressFactory | None = None,
             use_shipped: bool = True) -> Path:
    """Write ``out/sheet.png`` (the sample photo beside each stylization) and return its path."""
    photo = open_image(sample_photo_path())
    shipped = shipped_models(fast=False) if use_shipped else {}
    if shipped:
        stylizers = [load(folder, device=device) for folder in shipped.values()]
        for stylizer in stylizers:
            for movement in (stylizer.movements if stylizer.conditional else [None]):
                label = stylizer.label(movement)
                save_image(stylizer(photo, movement=movement), out / f"sample_{label}.png")
        sheet = out / "sheet.png"
        save_image(make_sheet(photo, stylizers, cell=320), sheet)
        return sheet
    return _tiny_demo(out, device, steps, progress, photo)


def _tiny_demo(out: Path, device: Any, steps: int, progress: ProgressFactory | None, photo: Image.Image) -> Path:
    from .runtime import resolve_device
    from .training import TrainRequest, train
    from .training.synthetic import write_dataset

    model_dir = out / "run" / DEMO_MOVEMENT
    if not is_model_folder(model_dir):
        log.info("no movement model yet: training a tiny demo model on generated images (%d steps)", steps)
        with tempfile.TemporaryDirectory(prefix="artstyle-demo-") as tmp:
            paintings, photos = write_dataset(Path(tmp), {DEMO_MOVEMENT: "ember"}, paintings=4, photos=8)
            request = TrainRequest(paintings=paintings, photos=photos, out=out / "run", config=tiny_config(steps),
                                   device=resolve_device(device) if isinstance(device, str) else device,
                                   overwrite=True)
            train(request, **({"progress": progress} if progress else {}))
    stylizer = load(model_dir, device=device)
    save_image(stylizer(photo), out / "sample_stylized.png")
    sheet = out / "sheet.png"
    save_image(make_sheet(photo, [stylizer]), sheet)
    return sheet
