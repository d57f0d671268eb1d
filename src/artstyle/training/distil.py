"""Distillation: a smaller network taught to paint what a trained model paints.

A movement's look is learnt by the style objective of ``loop.py``, which runs VGG-19 up to relu5_1
at every step. A narrower network (fewer channels or residual blocks), quicker at inference on a
CPU, learns that look faster from the trained model itself: the student sees the photo crops the
teacher sees and matches the teacher's output, pixel by pixel (L1) and in VGG-19's first layers
(relative squared error at relu1_1, relu2_1 and relu3_1: the strokes and edges an L1 alone would
blur). So a ``<movement>-fast`` variant paints like its full model, not like a second, separately
trained look (Hinton et al., "Distilling the Knowledge in a Neural Network", 2015, applied to
images as in Wang et al., "Collaborative Distillation for Ultra-Resolution Universal Style
Transfer", CVPR 2020).

The student is published like any trained model: the teacher's movements, loss settings and
paintings record (so ``evaluate`` measures it against the same paintings), its own network and
training settings, and ``trained.distilled`` saying what it learnt from.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..config import DISTIL_CHANNELS, DISTIL_IMAGE_SIZE, DISTIL_TRAIN, RunConfig, TrainConfig, to_dict
from ..errors import ModelError, UsageError
from ..image import image_grid, save_image, to_pil, to_tensor
from ..model_folder import DistillationRecord, ModelFolder, TrainingRecord
from ..models import build_model
from ..runtime import autocast_factory, resolve_precision
from . import distributed
from .checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from .data import PhotoCrops, PhotoStream
from .loop import (
    NonFinite,
    ProgressFactory,
    Shared,
    TrainRequest,
    TrainResult,
    _NoProgress,
    build_shared,
    check_output_folder,
    default_workers,
    plot_losses,
    remove_leftovers,
    run_steps,
    stop_if_nonfinite,
    terminate_as_interrupt,
    write_losses_csv,
)
from .losses import relative_error

log = logging.getLogger(__name__)

FEATURE_LAYERS = ("relu1_1", "relu2_1", "relu3_1")


@dataclass(frozen=True)
class DistilRequest:
    """Which model to distil, into what network, on which photos, and where the student goes."""

    teacher: str | Path  # a shipped model's name or a model folder (see ModelFolder.from_pretrained)
    photos: tuple[Path, ...]  # folders (searched recursively), text files of paths, or photos
    out: Path  # the student's model folder
    name: str | None = None  # the student's name (default: the teacher's, with "-fast")
    channels: int = DISTIL_CHANNELS
    residual_blocks: int = 5
    arch: str = "johnson"  # the student's network (artstyle.models.ARCHITECTURES)
    image_size: int = DISTIL_IMAGE_SIZE  # side of the square photo crops, px
    preview_photos: int = 4
    train: TrainConfig = DISTIL_TRAIN
    pixel_weight: float = 10.0  # of the mean absolute pixel difference, images in [0, 1]
    feature_weight: float = 1.0  # of each FEATURE_LAYERS relative error
    device: torch.device = torch.device("cpu")
    resume: bool = False
    overwrite: bool = False
    workers: int = field(default_factory=lambda: default_workers())


def distil(request: DistilRequest, progress: ProgressFactory = _NoProgress) -> TrainResult:
    """Train the student of ``request.teacher``; publish it in ``request.out``. Resumable like ``train``."""
    if distributed.world_size() > 1:
        raise UsageError("distillation runs in one process; run it without torchrun")
    teacher_folder = ModelFolder.from_pretrained(request.teacher)
    if teacher_folder.is_onnx:
        raise ModelError(f"{teacher_folder.path}: an exported .onnx file cannot teach; give its model folder")
    tc = request.train
    config = replace(
        teacher_folder.config,
        model=replace(teacher_folder.config.model, arch=request.arch, channels=request.channels,
                      residual_blocks=request.residual_blocks),
        data=replace(teacher_folder.config.data, image_size=request.image_size,
                     preview_photos=request.preview_photos),
        train=tc,
    )
    record = DistillationRecord(
        teacher=teacher_folder.name, teacher_path=str(teacher_folder.path),
        teacher_channels=teacher_folder.config.model.channels,
        teacher_residual_blocks=teacher_folder.config.model.residual_blocks, pixel_weight=request.pixel_weight,
        feature_weight=request.feature_weight, feature_layers=FEATURE_LAYERS,
    )
    folder = request.out
    check_output_folder(folder, request.resume, request.overwrite)
    if request.resume and not (folder / CHECKPOINT_FILE).exists():
        raise UsageError(f"{folder / CHECKPOINT_FILE}: no checkpoint to resume; run without --resume to start")
    remove_leftovers(folder)
    start_time = time.time()
    with terminate_as_interrupt():
        shared = build_shared(TrainRequest(paintings=folder, photos=request.photos, out=folder, config=config,
                                           device=request.device, workers=request.workers), progress)
        run = _Distillation(teacher_folder, config, record, request, shared, start_time)
        run.run_steps(progress)
        return run.finish()


class _Distillation:
    """One student's training: its network, optimiser, photo sampler, loss history and step."""

    def __init__(self, teacher: ModelFolder, config: RunConfig, record: DistillationRecord,
                 request: DistilRequest, shared: Shared, started: float) -> None:
        tc, device = config.train, request.device
        self.teacher_folder, self.config, self.record = teacher, config, record
        self.request, self.shared, self.device = request, shared, device
        self.name = request.name or f"{teacher.name}-fast"
        self.teacher = teacher.load_network().to(device).requires_grad_(False)
        torch.manual_seed(tc.seed)
        self.student = build_model(config.model).to(device)
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=tc.lr)
        self.lr_step = tc.lr_step or max(1, (tc.steps * 3) // 4)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=self.lr_step, gamma=tc.lr_gamma)
        size = config.data.image_size
        self.crops: PhotoCrops | PhotoStream
        if shared.train_paths:
            self.crops = PhotoStream(shared.train_paths, size, tc.batch_size, tc.seed, shared.photos_skipped,
                                     request.workers, pin_memory=device.type == "cuda")
        else:
            self.crops = PhotoCrops(shared.train_photos, size, seed=tc.seed)
        self.movements = len(config.model.movements) if config.model.conditional else 1
        self.history: list[dict[str, float]] = []
        self.step = 0
        self.started, self.seconds_before = started, 0.0  # seconds_before: the earlier processes' time
        self.checkpoint_path = request.out / CHECKPOINT_FILE
        self.resume()
        self.sampler_state = self.crops.generator.get_state()
        self.crops.start(self.step, tc.steps)
        self.nonfinite = NonFinite(device)
        self.last_good = self.step
        self.autocast = autocast_factory(device, resolve_precision(tc.precision, device))

    def settings(self) -> dict[str, Any]:
        """What a resumed run must share with the one it resumes."""
        settings = to_dict(self.config)
        for key in ("steps", "checkpoint_every", "preview_every", "log_every"):
            del settings["train"][key]
        return {"config": settings, "distilled": dataclasses.asdict(self.record)}

    def resume(self) -> None:
        request, path = self.request, self.checkpoint_path
        if request.resume and path.exists():
            state = load_checkpoint(path)
            if state.get("settings") != self.settings():
                raise UsageError(f"{path} was distilled with other settings (or from another teacher); resume "
                                 "with the same options, or use --overwrite to start again")
            if int(state["step"]) > self.config.train.steps:
                raise UsageError(f"{path} is already at step {state['step']}, past --steps {self.config.train.steps}")
            self.student.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scheduler.step_size = self.lr_step
            self.crops.generator.set_state(state["generator"])
            self.history = [dict(row) for row in state["history"]]
            self.step = int(state["step"])
            self.seconds_before = float(state.get("seconds", 0.0))  # older checkpoints did not keep it
            log.info("%s: resuming at step %d of %d", self.name, self.step, self.config.train.steps)
        elif request.overwrite:
            for filename in (CHECKPOINT_FILE, "model.safetensors"):
                (request.out / filename).unlink(missing_ok=True)

    def run_steps(self, progress: ProgressFactory) -> None:
        """The steps left; on Ctrl-C or SIGTERM, a checkpoint and :class:`TrainingInterrupted`."""
        self.student.train()
        run_steps(self, progress)

    def draw_style(self, batch_size: int) -> torch.Tensor | None:
        """Each sample's movement (one-hot) for a several-movement network; None for one movement."""
        if self.movements == 1:
            return None
        which = torch.randint(self.movements, (batch_size,), generator=self.crops.generator)
        return F.one_hot(which, self.movements).float().to(self.device)

    def train_step(self) -> dict[str, torch.Tensor]:
        tc = self.config.train
        photos = self.crops.batch(tc.batch_size, self.device)
        style = self.draw_style(tc.batch_size)
        with self.autocast():
            with torch.no_grad():
                wanted = self.teacher(photos, style).float()
            output = self.student(photos, style)
            losses = distillation_losses(output, wanted, self.shared.vgg, self.request.pixel_weight,
                                         self.request.feature_weight)
        self.nonfinite.record(losses["total"], self.step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        self.sampler_state = self.crops.generator.get_state()
        return losses

    def check_finite(self) -> None:
        stop_if_nonfinite(self, "--lr")

    def checkpoint(self) -> None:
        self.check_finite()
        save_checkpoint(self.checkpoint_path, {
            "model": self.student.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.sampler_state,
            "history": self.history,
            "step": self.step,
            "seconds": self.seconds(),
            "settings": self.settings(),
        })
        self.last_good = self.step

    def log_losses(self, losses: dict[str, torch.Tensor], bar: Any) -> None:
        self.check_finite()
        row = {"step": float(self.step), **{k: v.item() for k, v in losses.items()},
               "lr": self.optimizer.param_groups[0]["lr"]}
        self.history.append(row)
        bar.set_postfix_str(f"step {self.step}/{self.config.train.steps} total {row['total']:.3g} "
                            f"pixel {row['pixel']:.3g} features {row['features']:.3g}")

    def preview(self) -> None:
        """Write the reports so far, then go back to training."""
        self.save_reports()
        self.student.train()

    def save_reports(self) -> None:
        """losses.csv, loss.png, and preview.png: each held-out photo, then teacher and student."""
        folder = self.request.out
        write_losses_csv(folder / "losses.csv", self.history)
        if self.history:
            plot_losses(folder / "loss.png", self.history, title=f"{self.name}: distillation losses")
        if not self.shared.preview_photos:
            return
        movements = self.config.model.movements
        styles = list(torch.eye(self.movements, device=self.device)) if self.movements > 1 else [None]
        labels = ["photo (not trained on)"]
        for movement in movements[: len(styles)]:
            labels += [f"{self.teacher_folder.name} ({movement})" if self.movements > 1 else self.teacher_folder.name,
                       f"{self.name}, step {self.step}"]
        self.student.eval()
        rows = []
        with torch.no_grad():
            for photo in self.shared.preview_photos:
                x = to_tensor(photo).to(self.device)
                row = [photo]
                for style in styles:
                    row += [to_pil(self.teacher(x, style)), to_pil(self.student(x, style))]
                rows.append(row)
        save_image(image_grid(rows, labels=labels), folder / "preview.png")

    def seconds(self) -> float:
        """The distillation's time so far, over every process that resumed it."""
        return self.seconds_before + time.time() - self.started

    def finish(self) -> TrainResult:
        self.checkpoint()
        self.student.eval()
        seconds = self.seconds()
        teacher_trained = self.teacher_folder.trained or TrainingRecord()
        sources = self.request.photos
        shared = self.shared
        trained = TrainingRecord(
            steps=self.step, seconds=round(seconds, 1), device=str(self.device),
            precision=resolve_precision(self.config.train.precision, self.device), processes=1,
            photos_folder=next((str(p.resolve()) for p in sources if p.is_dir()), None),
            photo_sources=tuple(str(p.resolve()) for p in sources),
            photos_trained=shared.photo_count - (len(shared.photos_skipped) if shared.train_paths else 0),
            photos_skipped=len(shared.photos_skipped), preview_photos=tuple(shared.preview_names),
            paintings=teacher_trained.paintings, distilled=self.record,
        )
        ModelFolder(name=self.name, config=self.config, trained=trained,
                    vgg_weights_id=self.teacher_folder.vgg_weights_id).save_pretrained(self.request.out, self.student)
        self.save_reports()
        final = {k: v for k, v in self.history[-1].items() if k != "step"} if self.history else {}
        log.info("%s: done in %.0f s; model in %s", self.name, seconds, self.request.out)
        return TrainResult(self.name, self.request.out, self.step, final, seconds)


def distillation_losses(output: torch.Tensor, wanted: torch.Tensor, vgg: torch.nn.Module, pixel_weight: float,
                        feature_weight: float) -> dict[str, torch.Tensor]:
    """The student's ``output`` against the teacher's ``wanted`` (both (N, 3, H, W) in [0, 1]):
    weighted mean absolute pixel difference, and the relative squared error of their VGG-19
    features at each of FEATURE_LAYERS (``features/<layer>``); ``total`` is their sum."""
    losses: dict[str, torch.Tensor] = {"pixel": pixel_weight * (output.float() - wanted).abs().mean()}
    features = torch.zeros((), device=output.device)
    if feature_weight > 0:
        mine = vgg(output, FEATURE_LAYERS)
        with torch.no_grad():
            theirs = vgg(wanted, FEATURE_LAYERS)
        for layer in FEATURE_LAYERS:
            losses[f"features/{layer}"] = feature_weight * relative_error(mine[layer], theirs[layer])
            features = features + losses[f"features/{layer}"]
    losses["features"] = features
    losses["total"] = losses["pixel"] + features
    return losses
