"""Training: one fast stylizer network per movement, from a folder of paintings and one of photos.

``train(request)`` runs short ``build_*`` steps, then one loop per movement. Each movement gets
``OUT/<movement>/``: model.safetensors + config.json (the published model), checkpoint.pt (to
resume), losses.csv, loss.png and preview.png.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image

from ..config import STREAM_FROM, DataConfig, LossConfig, ModelConfig, RunConfig, from_dict, to_dict
from ..errors import ModelError, TrainingError, TrainingInterrupted, UsageError
from ..image import (
    atomic_write,
    image_grid,
    open_image,
    resize_max,
    save_image,
    temporary_beside,
    to_pil,
    to_tensor,
)
from ..model_folder import ModelFolder, PaintingsRecord, TrainingRecord, is_model_folder
from ..models import build_model
from ..models.critic import PatchCritic, critic_loss, diff_augment, generator_loss
from ..runtime import autocast_factory, resolve_precision
from . import distributed
from .checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from .data import (
    PhotoCrops,
    PhotoStream,
    Skipped,
    list_photos,
    load_resized,
    movement_folders,
    sample_paths,
    scan_movements,
    select_movements,
    split_photos,
)
from .losses import perceptual_losses, random_directions
from .targets import StyleTarget, contrasted, movement_target
from .vgg import VGG19Encoder, deepest, load_vgg19

log = logging.getLogger(__name__)

PREVIEW_SIZE = 320  # longest side of the preview photos, px


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...
    def set_postfix_str(self, s: str) -> object: ...
    def close(self) -> object: ...


ProgressFactory = Callable[..., Progress]  # (total=..., desc=..., unit=..., initial=...) -> Progress


class _NoProgress:
    def __init__(self, **_: Any) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class TrainRequest:
    """What to train and where; ``config`` holds every setting that shapes the result."""

    paintings: Path
    photos: Path | tuple[Path, ...]  # folders (searched recursively), text files of paths, or photos
    out: Path
    config: RunConfig = field(default_factory=RunConfig)
    movements: tuple[str, ...] = ()  # empty: every movement with enough paintings
    device: torch.device = torch.device("cpu")
    resume: bool = False
    # with resume: start the movements without a checkpoint, even when none has one (one command for
    # the first start and every restart); without it, resuming a run with no checkpoint at all stops
    start_if_new: bool = False
    overwrite: bool = False
    cache_dir: Path | None = None
    joint: bool = False  # one conditional network for all the movements, in OUT/<joint_name>
    joint_name: str = "joint"
    # torch.compile the loss computation (network, loss network, losses) and its backward pass:
    # fewer, fused kernels for a loop bound by the CPU's kernel launches; pays for long runs on a
    # GPU, after tens of seconds of compiling (figures: benchmarks/README.md)
    compile: bool = False
    # threads decoding photos (the "stream" photo loader) and paintings ahead of their use (0: none)
    workers: int = field(default_factory=lambda: default_workers())


def default_workers() -> int:
    """Decoding threads: the cores but one, up to 4 (0 on one core)."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


@dataclass(frozen=True)
class TrainResult:
    name: str  # the movement, or the joint network's name
    folder: Path
    steps: int
    final_losses: dict[str, float]
    seconds: float


@dataclass
class Shared:
    """What every movement of one run uses: the loss network and the photos."""

    vgg: VGG19Encoder
    train_photos: list[torch.Tensor]  # decoded, with the "memory" photo loader; else empty
    train_paths: list[Path]  # the photos the "stream" loader decodes as it goes; else empty
    preview_photos: list[Image.Image]
    preview_names: list[str]
    photo_count: int
    photos_skipped: Skipped
    precision: str


class NonFinite:
    """The first step whose loss was NaN or infinite, tracked on the device.

    Checking a loss at every step makes the CPU wait for the GPU each time, so it cannot queue
    the next step meanwhile; this records on the device and is read (``first``) only where the
    loop waits anyway (logging) and before anything is saved.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.step = torch.zeros((), dtype=torch.int64, device=device)  # 0: none yet
        self.value = torch.zeros((), device=device)

    def record(self, total: torch.Tensor, step: int) -> None:
        """Note ``total``, the loss of step ``step`` (from 1); a Python number reaches the device
        as a kernel argument, without a copy to wait for."""
        value = total.detach().float()
        hit = (self.step == 0) & ~torch.isfinite(value)
        self.step = torch.where(hit, step, self.step)
        self.value = torch.where(hit, value, self.value)

    def first(self) -> tuple[int, float] | None:
        """(step, loss) of the earliest non-finite loss on any process, or None. Collective."""
        local = int(self.step.item())
        step = distributed.smallest_positive(local, self.device)
        if not step:
            return None
        return step, float(self.value.item()) if local == step else float("nan")


class MovementCritic:
    """The adversarial part of training (``LossConfig.adversarial_weight > 0``): a patch critic, its
    optimiser, and the random multi-scale crops of the movement's paintings it learns from.

    ``stylizer_loss`` scores a batch of outputs for the stylizer's loss; ``step`` then trains the
    critic one step on paintings against those outputs. Its random state after each completed step
    is kept (``sampler_state``) so that a resumed run draws what the uninterrupted run would.
    """

    def __init__(self, paintings: Sequence[Path], size: int, seed: int, device: torch.device) -> None:
        skipped = Skipped()
        art = load_resized(paintings, 2 * size, skipped)
        self.crops = PhotoCrops(art, size, seed=seed + 7919, max_scale=2.0)
        self.augment = torch.Generator().manual_seed(seed + 104729)
        self.critic = PatchCritic().to(device)
        self.optimizer = torch.optim.Adam(self.critic.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.device = device
        self.sampler_state = self.snapshot()

    def snapshot(self) -> list[torch.Tensor]:
        return [self.crops.generator.get_state(), self.augment.get_state()]

    def stylizer_loss(self, output: torch.Tensor) -> torch.Tensor:
        self.critic.requires_grad_(False)
        return generator_loss(self.critic(diff_augment(output, self.augment)))

    def step(self, output: torch.Tensor, batch_size: int, autocast: Callable[[], Any]) -> torch.Tensor:
        """One critic step on painting crops against ``output`` (detached); its loss."""
        self.critic.requires_grad_(True)
        real = self.crops.batch(batch_size, self.device)
        with autocast():
            loss = critic_loss(self.critic(diff_augment(real, self.augment)),
                               self.critic(diff_augment(output.detach(), self.augment)))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.sampler_state = self.snapshot()
        return loss.detach()

    def state(self) -> dict[str, Any]:
        return {"critic": self.critic.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generators": self.sampler_state}

    def load(self, state: dict[str, Any]) -> None:
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.crops.generator.set_state(state["generators"][0])
        self.augment.set_state(state["generators"][1])
        self.sampler_state = self.snapshot()


def train(request: TrainRequest, progress: ProgressFactory = _NoProgress) -> list[TrainResult]:
    """Train every requested movement in turn (or all in one joint network); one result per model."""
    config = request.config
    found = scan_movements(request.paintings)
    chosen = select_movements(found, request.movements or None, config.data.min_paintings)
    away = contrast_movements(found, config.loss.contrast_with, config.data.min_paintings) \
        if config.loss.contrast > 0 else {}
    if away:  # the run records the movements it pushes away from, also when they were "every other one"
        config = replace(config, loss=replace(config.loss, contrast_with=config.loss.contrast_with or tuple(away)))
        request = replace(request, config=config)
    if config.loss.adversarial_weight > 0 and (request.joint or distributed.world_size() > 1):
        raise UsageError("the movement critic (--adversarial-weight) trains one movement in one process; "
                         "drop --joint and torchrun, or set --adversarial-weight 0")
    if request.joint:
        if len(chosen) < 2:
            raise UsageError("--joint trains one network for several movements; give at least two")
        jobs = {request.joint_name: chosen}
    else:
        jobs = {movement: {movement: paths} for movement, paths in chosen.items()}
    for name in jobs:
        check_output_folder(request.out / name, request.resume, request.overwrite)
    starting = [n for n in jobs if not (request.resume and (request.out / n / CHECKPOINT_FILE).exists())]
    start = None  # checked now, before any work; a resumed run needs its starting model no more
    if config.train.init_from and starting:
        start = starting_model(config.train.init_from, config.model, len(chosen) if request.joint else 1,
                               request.joint)
    if request.resume:
        check_something_to_resume(request, list(jobs))
    if distributed.is_main():
        for name in jobs:
            remove_leftovers(request.out / name)
            temporary_beside(request.out / name / CHECKPOINT_FILE).unlink()  # fails now if it cannot be written
    with terminate_as_interrupt():
        shared = build_shared(request, progress)
        away_targets = {m: build_target(m, paths, request, shared, progress) for m, paths in away.items()}
        return [train_model(name, movements, request.out / name, request, shared, progress, start, away_targets)
                for name, movements in jobs.items()]


def contrast_movements(found: dict[str, list[Path]], wanted: Sequence[str],
                       min_paintings: int) -> dict[str, list[Path]]:
    """The movements ``--contrast`` pushes the style away from: the ``wanted`` ones (folders, or
    NAME=FOLDER+FOLDER), or every movement folder with at least ``min_paintings`` paintings."""
    if wanted:
        return select_movements(found, wanted, 1)
    return {m: paths for m, paths in found.items() if len(paths) >= min_paintings}


def pushed_away(own: MovementTarget, paths: Sequence[Path], away: dict[str, MovementTarget],
                weight: float) -> MovementTarget:
    """``own`` with its Grams pushed away from the ``away`` movements that share none of its paintings
    (a movement is never pushed away from itself, nor from a union of folders that holds it)."""
    mine = set(paths)
    others = [t.target for t in away.values() if not mine.intersection(t.paintings)]
    return replace(own, target=contrasted(own.target, others, weight))


class Terminated(KeyboardInterrupt):
    """SIGTERM (what a scheduler sends before it preempts a job), handled as Ctrl-C is."""

    exit_code = 143  # 128 + SIGTERM, as a shell reports a process the signal ended


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated`, so training saves a checkpoint and stops."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread takes signals
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def starting_model(ref: str, wanted: ModelConfig, movements: int, conditional: bool) -> ModelFolder:
    """The model ``--init-from`` names, checked to have the network this run trains (its width, depth
    and, for a joint network, its number of movements); raises ``UsageError`` saying what to change."""
    try:
        start = ModelFolder.from_pretrained(ref)
    except ModelError as err:
        raise UsageError(f"--init-from: {err}") from None
    if start.is_onnx:
        raise UsageError(f"--init-from {ref}: an exported .onnx file has no weights to train on; give its model folder")
    have = start.config.model
    if (have.arch, have.channels, have.residual_blocks) != (wanted.arch, wanted.channels, wanted.residual_blocks):
        raise UsageError(f"--init-from {ref}: its network has {have.channels} channels and {have.residual_blocks} "
                         f"residual blocks, this run's {wanted.channels} and {wanted.residual_blocks}; add "
                         f"--channels {have.channels} --residual-blocks {have.residual_blocks}")
    if (have.conditional, len(have.movements) if have.conditional else 1) != (conditional, movements):
        what = f"a joint network of {len(have.movements)} movements" if have.conditional else "a one-movement network"
        wants = f"a joint network of {movements}" if conditional else "one network per movement"
        raise UsageError(f"--init-from {ref}: it is {what}, and this run trains {wants}; start from a model "
                         "of the same kind")
    return start


def check_something_to_resume(request: TrainRequest, names: Sequence[str]) -> None:
    """Stop a ``--resume`` that finds no checkpoint at all (a wrong --out, most likely), unless told
    to start; movements without one among others that have one start from step 0."""
    if any((request.out / name / CHECKPOINT_FILE).exists() for name in names):
        return
    where = request.out / names[0] if len(names) == 1 else request.out
    if not request.start_if_new:
        raise UsageError(f"nothing to resume: no {CHECKPOINT_FILE} in {where}; check --out, or drop --resume "
                         "to start (--resume-or-start does either)")
    log.warning("no %s in %s yet: starting from step 0", CHECKPOINT_FILE, where)


def remove_leftovers(folder: Path) -> None:
    """Delete the hidden temporary files that a run killed while writing (``atomic_write``) leaves."""
    if not folder.is_dir():
        return
    for tmp in folder.glob(".*.tmp"):
        try:
            tmp.unlink()
            log.debug("removed %s, left by an interrupted write", tmp)
        except OSError as err:
            log.warning("could not remove %s, left by an interrupted write: %s", tmp, err)


def check_output_folder(folder: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to silently replace an earlier run's results."""
    if overwrite or resume:
        return
    if is_model_folder(folder) or (folder / CHECKPOINT_FILE).exists():
        raise UsageError(f"{folder} already holds a run; use --resume to continue it "
                         "or --overwrite to start it again")


def photo_sources(request: TrainRequest) -> tuple[Path, ...]:
    """The request's photo folders, lists and files, as a tuple."""
    return (request.photos,) if isinstance(request.photos, Path) else tuple(request.photos)


def build_shared(request: TrainRequest, progress: ProgressFactory) -> Shared:
    config = request.config
    device = request.device
    precision = resolve_precision(config.train.precision, device)
    layers = [*config.loss.style_layers, config.loss.content_layer]
    vgg = load_vgg19(config.loss.vgg_weights, last_layer=deepest(layers)).to(device)
    sources = photo_sources(request)
    photo_paths = list_photos(sources)
    if not photo_paths:
        raise UsageError(f"{', '.join(map(str, sources))}: no photos there; give folders of .jpg/.png photos, or "
                         "text files listing them")
    stream = streams_photos(config.data, len(photo_paths))
    if not stream:
        photo_paths = sample_paths(photo_paths, config.data.max_photos + config.data.preview_photos,
                                   config.train.seed)
    train_paths, preview_paths = split_photos(photo_paths, config.data.preview_photos, config.train.seed)
    skipped = Skipped()
    photos: list[torch.Tensor] = []
    if not stream:
        bar = progress(total=len(train_paths), desc="reading photos", unit="img")
        photos = load_resized(train_paths, config.data.image_size, skipped, progress=bar.update)
        bar.close()
        if not photos:
            raise UsageError(f"{', '.join(map(str, sources))}: none of the {len(train_paths)} photos could be read")
        if skipped:
            log.warning("skipped %d unreadable photo(s) of %d", len(skipped), len(train_paths))
    previews, names = [], []
    for path in preview_paths:
        try:
            previews.append(resize_max(open_image(path), PREVIEW_SIZE))
            names.append(path.name)
        except Exception as err:
            log.warning("preview photo skipped: %s", err)
    count = len(train_paths) if stream else len(photos)
    log.info("%d training photos (%s), %d preview photos; precision %s on %s", count,
             f"decoded as training goes by {request.workers} worker(s)" if stream else "in memory",
             len(previews), precision, device)
    return Shared(vgg, photos, train_paths if stream else [], previews, names, count, skipped, precision)


def streams_photos(data: DataConfig, photos: int) -> bool:
    """Whether the run decodes its photos as it goes (see ``PHOTO_LOADERS``)."""
    return data.photo_loader == "stream" or (data.photo_loader == "auto" and photos > STREAM_FROM)


@dataclass(frozen=True)
class MovementTarget:
    """One movement's style target, with the paintings sampled for it and those that could not be read."""

    target: StyleTarget
    paintings: list[Path]  # the sampled paintings (``target.paintings`` counts those it was built from)
    skipped: Skipped


def build_target(movement: str, paths: Sequence[Path], request: TrainRequest, shared: Shared,
                 progress: ProgressFactory) -> MovementTarget:
    config = request.config
    skipped = Skipped()
    bar = progress(total=min(len(paths), config.data.max_paintings), desc=f"{movement}: style target", unit="img")
    target, chosen = movement_target(
        paths, shared.vgg, config.loss, config.data, config.train.seed, request.device, request.cache_dir,
        skipped, autocast_factory(request.device, shared.precision), bar.update, workers=request.workers,
    )
    bar.close()
    if skipped:
        log.warning("%s: skipped %d unreadable painting(s) of %d", movement, len(skipped), len(chosen))
    return MovementTarget(target, chosen, skipped)


def train_model(name: str, movements: dict[str, list[Path]], folder: Path, request: TrainRequest,
                shared: Shared, progress: ProgressFactory, start: ModelFolder | None = None,
                away: dict[str, MovementTarget] | None = None) -> TrainResult:
    """Train one network: for one movement, or (``request.joint``) for several at once; from the
    weights of ``start`` (``--init-from``) unless it resumes; with ``away`` (``--contrast``), each
    movement's target pushed away from those movements'."""
    config = request.config
    config = replace(config, model=replace(config.model, movements=tuple(movements), conditional=request.joint))
    started = time.time()
    targets = {m: build_target(m, paths, request, shared, progress) for m, paths in movements.items()}
    if away:
        targets = {m: pushed_away(t, movements[m], away, config.loss.contrast) for m, t in targets.items()}
    run = _Run(name, folder, config, request, shared, targets, started, start)
    run.run_steps(progress)
    return run.finish()


@dataclass(frozen=True)
class _Batch:
    """What one step trains on: photo crops, each sample's movement (one-hot; None for a single
    movement), the style targets they are measured against, and the step's random directions (sliced
    style loss only)."""

    photos: torch.Tensor
    style: torch.Tensor | None
    targets: dict[str, torch.Tensor]
    directions: dict[str, torch.Tensor] | None


class _Run:
    """The training of one network, from its first (or resumed) step to its last.

    Holds what changes as training goes (the network, its optimiser and schedule, the photo sampler,
    the critic, the loss history, the step), so that each part of the loop (``resume``, ``draw_batch``,
    ``train_step``, ``check_finite``, ``checkpoint``, ``log_losses``, ``preview``, ``finish``) is a
    method that reads and updates that one state rather than a closure over changing locals.
    """

    def __init__(self, name: str, folder: Path, config: RunConfig, request: TrainRequest, shared: Shared,
                 targets: dict[str, MovementTarget], started: float, start: ModelFolder | None = None) -> None:
        """Build the network and everything that trains it, then restore them from the checkpoint when
        resuming. ``started``: when this process began the run (``time.time()``); ``start``: the
        model whose weights a new run starts from (``--init-from``, checked by :func:`starting_model`)."""
        tc, device = config.train, request.device
        self.name, self.folder, self.config, self.request, self.shared = name, folder, config, request, shared
        self.targets = targets
        self.device = device
        self.conditional = request.joint
        # layer -> (movements, C, C) Grams or (movements, samples, C) feature pools: a batch's targets
        # are rows picked by each sample's movement
        self.sliced = config.loss.style_loss == "sliced"
        self.stacked = {layer: torch.stack([(t.target.pools if self.sliced else t.target.grams)[layer]
                                            for t in targets.values()]).to(device)
                        for layer in config.loss.style_layers}
        self.single = {layer: t[0] for layer, t in self.stacked.items()}

        torch.manual_seed(tc.seed)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # every step has the same shapes: tune once, reuse
        self.model = build_model(config.model).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=tc.lr)
        self.lr_step = tc.lr_step or max(1, (tc.steps * 3) // 4)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=self.lr_step, gamma=tc.lr_gamma)
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.crops: PhotoCrops | PhotoStream
        if shared.train_paths:
            self.crops = PhotoStream(shared.train_paths, config.data.image_size, tc.batch_size, tc.seed,
                                     shared.photos_skipped, request.workers, self.rank, self.world,
                                     pin_memory=device.type == "cuda")
        else:
            self.crops = PhotoCrops(shared.train_photos, config.data.image_size, seed=tc.seed + 1000 * self.rank)
        self.critic: MovementCritic | None = None
        if config.loss.adversarial_weight > 0:
            (only,) = targets.values()
            self.critic = MovementCritic(only.paintings, config.data.image_size, tc.seed, device)
        self.history: list[dict[str, float]] = []
        self.step = 0
        self.started, self.seconds_before = started, 0.0  # seconds_before: the earlier processes' time
        self.start = start
        self.checkpoint_path = folder / CHECKPOINT_FILE

        self.resume()
        # The sampler's state after `step` completed steps: an interrupted step has already drawn its
        # batch, and a resumed run must draw that batch again.
        self.sampler_state = self.crops.generator.get_state()
        self.crops.start(self.step, tc.steps)
        self.nonfinite = NonFinite(device)
        self.last_good = self.step  # the step of the newest checkpoint, if one was saved or resumed from
        self.autocast = autocast_factory(device, shared.precision)
        self.trained = distributed.wrap(self.model, device)  # the loss network stays outside DDP: it is frozen
        self.losses_of = torch.compile(compute_losses) if request.compile else compute_losses

    def resume(self) -> None:
        """With ``--resume`` and a checkpoint, carry on from it: network, optimiser, schedule, photo
        sampler, critic, history and step. Otherwise start: with ``--overwrite``, delete the earlier
        run's checkpoint and model first; with ``--init-from``, from that model's weights."""
        request, path, tc = self.request, self.checkpoint_path, self.config.train
        if request.resume and path.exists():
            state = load_checkpoint(path)
            check_resumable(state, self.config, path)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scheduler.step_size = self.lr_step  # --steps may have changed; the schedule follows it
            generators = state["generators"]
            if len(generators) != self.world:
                raise UsageError(f"{path} was trained by {len(generators)} process(es), now {self.world}; "
                                 "resume with the same number of processes")
            self.crops.generator.set_state(generators[self.rank])
            if self.critic is not None:
                self.critic.load(state["critic"])
            self.history = [dict(row) for row in state["history"]]
            self.step = int(state["step"])
            self.seconds_before = float(state.get("seconds", 0.0))  # older checkpoints did not keep it
            log.info("%s: resuming at step %d of %d", self.name, self.step, tc.steps)
            return
        if request.overwrite and self.folder.exists():
            for filename in (CHECKPOINT_FILE, "model.safetensors"):
                (self.folder / filename).unlink(missing_ok=True)
        elif request.resume:
            log.info("%s: no checkpoint yet; starting from step 0", self.name)
        if self.start is not None:
            self.model.load_state_dict(self.start.load_network().state_dict())
            log.info("%s: starting from the weights of %s", self.name, self.start.path)

    def run_steps(self, progress: ProgressFactory) -> None:
        """Run the steps left; on Ctrl-C or SIGTERM, save a checkpoint and raise :class:`TrainingInterrupted`."""
        self.model.train()
        run_steps(self, progress)

    def draw_batch(self) -> _Batch:
        """The next step's batch, drawn from the photo sampler (which also picks each sample's movement)."""
        tc, device = self.config.train, self.device
        photos = self.crops.batch(tc.batch_size, device)
        style: torch.Tensor | None
        if self.conditional:
            count = len(self.targets)
            which = torch.randint(count, (tc.batch_size,), generator=self.crops.generator)
            which = (which.pin_memory() if device.type == "cuda" else which).to(device, non_blocking=True)
            style = torch.nn.functional.one_hot(which, count).float()
            targets = {layer: t[which] for layer, t in self.stacked.items()}
        else:
            style, targets = None, self.single  # one target for every sample; the loss broadcasts it
        # new random directions at every step, a function of the seed and step (so resumable)
        directions = {layer: random_directions(t.shape[-1], tc.seed * 1_000_003 + self.step, device)
                      for layer, t in self.single.items()} if self.sliced else None
        return _Batch(photos, style, targets, directions)

    def train_step(self) -> dict[str, torch.Tensor]:
        """Train one step (and the critic's, if any); its losses, still on the device."""
        loss_config, critic = self.config.loss, self.critic
        batch = self.draw_batch()
        with self.autocast():
            losses, output = self.losses_of(self.trained, self.shared.vgg, batch.photos, batch.style, batch.targets,
                                            loss_config, batch.directions)
            if critic is not None:
                losses["adversarial"] = loss_config.adversarial_weight * critic.stylizer_loss(output)
                losses["total"] = losses["total"] + losses["adversarial"]
        total = losses["total"]
        self.nonfinite.record(total, self.step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.scheduler.step()
        if critic is not None:
            losses["critic"] = critic.step(output, self.config.train.batch_size, self.autocast)
        self.step += 1
        self.sampler_state = self.crops.generator.get_state()
        return losses

    def check_finite(self) -> None:
        """Stop with :class:`TrainingError` once any process has seen a NaN or infinite loss. Collective."""
        stop_if_nonfinite(self, "--lr or --style-weight")

    def checkpoint(self) -> None:
        """Save what resuming needs to checkpoint.pt, once the losses so far are known finite. Collective."""
        self.check_finite()  # never save weights that a NaN has reached
        generators = distributed.gather(self.sampler_state)  # collective: every process calls it
        if distributed.is_main():
            save_checkpoint(self.checkpoint_path, {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "generators": generators,
                "history": self.history,
                "step": self.step,
                "seconds": self.seconds(),
                "config": to_dict(self.config),
                **({"critic": self.critic.state()} if self.critic is not None else {}),
            })
        self.last_good = self.step

    def log_losses(self, losses: dict[str, torch.Tensor], bar: Progress) -> None:
        """Add the step's losses and learning rate to the history, and show them on the progress bar."""
        tc = self.config.train
        self.check_finite()
        row = {"step": float(self.step), **{k: v.item() for k, v in losses.items()},
               "lr": self.optimizer.param_groups[0]["lr"]}
        self.history.append(row)
        bar.set_postfix_str(
            f"step {self.step}/{tc.steps} total {row['total']:.3g} content {row['content']:.3g} "
            f"style {row['style']:.3g} tv {row['tv']:.3g}"
        )

    def preview(self) -> None:
        """Write the reports (losses, loss plot, preview) so far, then go back to training."""
        self.check_finite()  # collective: every process calls it
        if distributed.is_main():
            self.save_reports()
            self.model.train()

    def save_reports(self) -> None:
        """losses.csv, loss.png and preview.png of the steps so far (see ``write_reports``)."""
        write_reports(self.folder, self.name, list(self.targets), self.model, self.shared, self.history, self.step,
                      self.device)

    def seconds(self) -> float:
        """The run's training time so far, over every process that resumed it."""
        return self.seconds_before + time.time() - self.started

    def finish(self) -> TrainResult:
        """Save the last checkpoint, publish the model and its reports; the result."""
        self.checkpoint()
        self.model.eval()
        seconds = self.seconds()
        if distributed.is_main():
            published_model(self.config, self.name, self.request, self.shared, self.targets, self.step,
                            seconds).save_pretrained(self.folder, self.model)
            self.save_reports()
        distributed.barrier()
        final = {k: v for k, v in self.history[-1].items() if k != "step"} if self.history else {}
        log.info("%s: done in %.0f s; model in %s", self.name, seconds, self.folder)
        return TrainResult(self.name, self.folder, self.step, final, seconds)


class Steps(Protocol):
    """What :func:`run_steps` drives: a training run (``_Run``, or a distillation's) and its state."""

    name: str
    step: int
    config: RunConfig
    crops: PhotoCrops | PhotoStream
    checkpoint_path: Path
    nonfinite: NonFinite
    last_good: int

    def train_step(self) -> dict[str, torch.Tensor]: ...
    def log_losses(self, losses: dict[str, torch.Tensor], bar: Progress) -> None: ...
    def checkpoint(self) -> None: ...
    def preview(self) -> None: ...


def run_steps(run: Steps, progress: ProgressFactory) -> None:
    """Run ``run``'s steps left, logging, checkpointing and previewing as its settings say; on Ctrl-C
    or SIGTERM, save a checkpoint and raise :class:`TrainingInterrupted`."""
    tc = run.config.train
    bar = progress(total=tc.steps * tc.batch_size, desc=run.name, unit="img", initial=run.step * tc.batch_size)
    try:
        while run.step < tc.steps:
            losses = run.train_step()
            bar.update(tc.batch_size)
            if run.step % tc.log_every == 0 or run.step == tc.steps or run.step == 1:
                run.log_losses(losses, bar)
            if run.step % tc.checkpoint_every == 0 and run.step < tc.steps:
                run.checkpoint()
            if run.step % tc.preview_every == 0 and run.step < tc.steps:
                run.preview()
    except KeyboardInterrupt as err:
        bar.close()
        run.crops.close()
        run.checkpoint()
        what = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        raise TrainingInterrupted(
            f"{what}: {run.name} saved at step {run.step} of {tc.steps} in {run.checkpoint_path}; "
            "run the same command with --resume to continue",
            exit_code=143 if isinstance(err, Terminated) else 130,
        ) from None
    finally:
        run.crops.close()
    bar.close()


def stop_if_nonfinite(run: Steps, settings: str) -> None:
    """:class:`TrainingError` once ``run`` has seen a NaN or infinite loss, saying which checkpoint is
    kept and which ``settings`` to lower."""
    first = run.nonfinite.first()
    if first is not None:
        kept = (f"the last good checkpoint (step {run.last_good}) is kept in {run.checkpoint_path}; lower "
                f"{settings} and run again with --resume" if run.checkpoint_path.exists() else
                f"no checkpoint was saved before it; lower {settings} and run again")
        raise TrainingError(f"{run.name}: the loss became {first[1]} at step {first[0]}; {kept}")


def compute_losses(model: torch.nn.Module, vgg: VGG19Encoder, photos: torch.Tensor, style: torch.Tensor | None,
                   targets: dict[str, torch.Tensor], config: LossConfig,
                   directions: dict[str, torch.Tensor] | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One forward pass: stylize the photos and measure the output against photos and targets
    (Grams, or feature pools with the step's ``directions``; see ``perceptual_losses``).
    Returns the losses and the output."""
    output = model(photos, style)
    output_features = vgg(output, [*config.style_layers, config.content_layer])
    with torch.no_grad():
        content_features = vgg(photos, [config.content_layer])
    return perceptual_losses(output, output_features, content_features, targets, config, directions), output


def check_resumable(state: dict[str, Any], config: RunConfig, path: Path) -> None:
    """Resuming is allowed with more (or fewer) steps, but not with other settings."""
    try:
        saved = from_dict(RunConfig, state["config"])
    except Exception as err:
        raise UsageError(f"{path}: cannot read the saved settings ({err}); use --overwrite") from None
    a, b = to_dict(saved), to_dict(config)
    for settings in (a, b):  # what may change between the run and its resumption
        for key in ("steps", "checkpoint_every", "preview_every", "log_every"):
            del settings["train"][key]
    if a != b:
        diffs = _diff(a, b)
        raise UsageError(f"{path} was trained with other settings ({'; '.join(diffs)}); resume with "
                         "the same options, or use --overwrite to start again")
    if int(state["step"]) > config.train.steps:
        raise UsageError(f"{path} is already at step {state['step']}, past --steps {config.train.steps}")


def _diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in a:
        if isinstance(a[key], dict):
            out += _diff(a[key], b[key], f"{prefix}{key}.")
        elif a[key] != b[key]:
            out.append(f"{prefix}{key}: saved {a[key]!r}, now {b[key]!r}")
    return out


def published_model(config: RunConfig, name: str, request: TrainRequest, shared: Shared,
                    targets: dict[str, MovementTarget], step: int,
                    seconds: float) -> ModelFolder:
    """The published model's config: enough to rebuild it and to reproduce its training."""
    folders = movement_folders(request.paintings, request.movements, list(targets))
    sources = photo_sources(request)
    trained = TrainingRecord(
        steps=step, seconds=round(seconds, 1), device=str(request.device), precision=shared.precision,
        processes=distributed.world_size(),
        # absolute: evaluate reads them from anywhere; the first folder is the judge's default photos
        photos_folder=next((str(p.resolve()) for p in sources if p.is_dir()), None),
        photo_sources=tuple(str(p.resolve()) for p in sources),
        # streamed photos are found unreadable as training goes; decoded ones were counted before
        photos_trained=shared.photo_count - (len(shared.photos_skipped) if shared.train_paths else 0),
        photos_skipped=len(shared.photos_skipped),
        preview_photos=tuple(shared.preview_names),
        paintings={movement: PaintingsRecord(folders=tuple(str(f.resolve()) for f in folders[movement]),
                                             sampled=len(t.paintings), used=t.target.paintings,
                                             skipped=len(t.skipped), style_target_key=t.target.key)
                   for movement, t in targets.items()},
    )
    return ModelFolder(name=name, config=config, trained=trained, vgg_weights_id=shared.vgg.weights_id)


def write_reports(folder: Path, name: str, movements: Sequence[str], model: torch.nn.Module, shared: Shared,
                  history: list[dict[str, float]], step: int, device: torch.device) -> None:
    """losses.csv, loss.png and preview.png (each held-out photo beside each movement), atomically."""
    write_losses_csv(folder / "losses.csv", history)
    if history:
        plot_losses(folder / "loss.png", history, title=f"{name}: training losses")
    if not shared.preview_photos:
        return
    conditional = getattr(model, "movements", 1) > 1
    styles = list(torch.eye(len(movements), device=device)) if conditional else [None]
    labels = list(movements) if conditional else [name]
    model.eval()
    rows = []
    with torch.no_grad():
        for photo in shared.preview_photos:
            x = to_tensor(photo).to(device)
            rows.append([photo, *(to_pil(model(x, style)) for style in styles)])
    step_labels = [f"{label}, step {step}" for label in labels]
    save_image(image_grid(rows, labels=["photo (not trained on)", *step_labels]), folder / "preview.png")


def write_losses_csv(path: Path, history: list[dict[str, float]]) -> None:
    if not history:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(history[0]), lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (int(v) if k == "step" else f"{v:.6g}") for k, v in row.items()})
    atomic_write(path, lambda f: f.write(buffer.getvalue().encode()))


def plot_losses(path: Path, history: list[dict[str, float]], title: str) -> None:
    """Two panels on a log scale: the weighted losses (total, content, style, tv; or a distillation's
    pixel and features), and the style (or features) loss by VGG layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [row["step"] for row in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    weighted = ("total", "content", "style", "tv", "pixel", "features")
    for key in (k for k in weighted if k in history[0]):
        ax1.plot(steps, [row[key] for row in history], label=key)
    by_layer = "style" if any(k.startswith("style/") for k in history[0]) else "features"
    for name in (k for k in history[0] if k.startswith(f"{by_layer}/")):
        ax2.plot(steps, [row[name] for row in history], label=name.split("/", 1)[1])
    for ax, sub in ((ax1, "weighted losses"), (ax2, f"{by_layer} loss by VGG layer")):
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(sub)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


