"""Configuration as data: frozen dataclasses that round-trip through plain dicts (``config.json``)."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: bf16 where the device computes it natively
# painting may also run in int8 (the OpenVINO engine: convolutions quantised, calibrated on real photos)
INFERENCE_PRECISIONS = (*PRECISIONS, "int8")

STYLE_LOSSES = ("gram", "sliced")

# how training reads its photos: "memory" decodes them all before the first step and keeps them
# (quickest for a few thousand), "stream" decodes them as it goes on worker threads (any number,
# in bounded memory), "auto" streams sets larger than STREAM_FROM photos
PHOTO_LOADERS = ("auto", "memory", "stream")
STREAM_FROM = 2000

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

# (block, convolutions in it) of VGG-19; its layers are named relu{block}_{index} as in the paper
VGG_BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
VGG_RELU_LAYERS = tuple(f"relu{b}_{i}" for b, n in VGG_BLOCKS for i in range(1, n + 1))

T = TypeVar("T")


def default_cache_dir() -> Path:
    """``$ARTSTYLE_CACHE`` or ``~/.cache/artstyle``."""
    env = os.environ.get("ARTSTYLE_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "artstyle"


@dataclass(frozen=True)
class ModelConfig:
    """The stylizer network: Johnson et al. (2016) with instance norm and upsample+conv decoding."""

    arch: str = "johnson"
    channels: int = 32  # width of the first conv; the residual blocks run at 4x this
    residual_blocks: int = 5
    movements: tuple[str, ...] = ()
    conditional: bool = False  # one network for all `movements`, with conditional instance norm


@dataclass(frozen=True)
class LossConfig:
    """Loss settings. Weights multiply losses whose normalisation is documented in losses.py."""

    preset: str = "default"
    # what the style loss compares: "gram", the mean Gram matrix over the paintings (Gatys et al.;
    # cheap, but averaging smooths a movement into one palette and texture), or "sliced", the
    # distribution of the paintings' features (sliced Wasserstein; keeps their several modes, costs
    # a sort per layer and step). "gram" here so that configs written before the choice existed read
    # as what they were; the "sliced" preset picks "sliced"
    style_loss: str = "gram"
    content_layer: str = "relu4_2"
    content_weight: float = 1.0
    style_layers: tuple[str, ...] = STYLE_LAYERS
    style_layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
    style_weight: float = 0.5
    tv_weight: float = 1.0
    # weight of the movement critic's loss (a patch discriminator trained on crops of the movement's
    # paintings; Sanakoyeu et al. 2018); 0 = no critic. Slower, and needs many steps to pay
    adversarial_weight: float = 0.0
    # how far the mean-Gram target is pushed away from other movements' mean Gram: the target is
    # own + contrast * (own - theirs), so what the movement shares with them (the dark, warm grounds
    # of baroque, renaissance and romanticism) weighs less and what sets it apart more; 0 = off
    contrast: float = 0.0
    # the movements pushed away from (folders, or NAME=FOLDER+FOLDER); () = every other movement
    # folder with at least --min-paintings paintings. Training records the ones it used
    contrast_with: tuple[str, ...] = ()
    vgg_weights: str = "oxford"

    def __post_init__(self) -> None:
        for layer in (self.content_layer, *self.style_layers):
            if layer not in VGG_RELU_LAYERS:
                raise UsageError(f"unknown VGG-19 layer {layer!r}; choose one of: {', '.join(VGG_RELU_LAYERS)}")
        _check_weights(self, "content_weight", "style_weight", "tv_weight", "adversarial_weight", "contrast")
        if self.contrast > 0 and self.style_loss != "gram":
            raise UsageError("--contrast pushes the mean Gram target away from other movements; it needs "
                             "--style-loss gram (or set --contrast 0)")
        if not all(math.isfinite(w) and w >= 0 for w in self.style_layer_weights):
            raise UsageError(f"style layer weights {self.style_layer_weights} must be numbers, 0 or more")
        if self.style_loss not in STYLE_LOSSES:
            raise UsageError(f"unknown style loss {self.style_loss!r}; choose one of: {', '.join(STYLE_LOSSES)}")
        if len(self.style_layers) != len(self.style_layer_weights):
            raise UsageError(
                f"{len(self.style_layers)} style layers but {len(self.style_layer_weights)} layer "
                "weights; give one weight per layer"
            )


@dataclass(frozen=True)
class DataConfig:
    """What to train on and at which size (pixels)."""

    image_size: int = 256  # side of the square photo crops the network trains on
    style_size: int = 512  # shorter side of a painting when its Gram matrices are taken
    max_paintings: int = 500  # per movement, drawn at random with the run's seed
    style_views: int = 32  # at least this many views make a style; small sets get crops at random scales
    style_samples: int = 8192  # feature vectors per VGG layer pooled over the views, for the sliced loss
    min_paintings: int = 5  # movements with fewer readable paintings are skipped
    preview_photos: int = 4  # photos held out of training and shown in preview.png
    max_photos: int = 20000  # photos kept in memory, resized, for training (with the "memory" loader)
    photo_loader: str = "auto"  # see PHOTO_LOADERS

    def __post_init__(self) -> None:
        if self.photo_loader not in PHOTO_LOADERS:
            raise UsageError(f"unknown photo loader {self.photo_loader!r}; choose one of: {', '.join(PHOTO_LOADERS)}")
        _check_counts(self, "preview_photos", positive=False)
        _check_counts(self, "image_size", "style_size", "max_paintings", "style_views", "style_samples",
                      "min_paintings", "max_photos")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: Adam with a step learning-rate schedule."""

    steps: int = 2000
    batch_size: int = 4
    lr: float = 1.0e-3
    lr_step: int = 0  # steps between learning-rate drops; 0 = drop at 3/4 of the run
    lr_gamma: float = 0.3
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | bf16 | fp16; auto = bf16 where the device computes it natively
    checkpoint_every: int = 100
    preview_every: int = 100
    log_every: int = 10
    # a shipped model's name or a model folder whose weights start the run (fine-tuning it);
    # empty: random weights
    init_from: str = ""

    def __post_init__(self) -> None:
        _check_counts(self, "lr_step", positive=False)
        _check_counts(self, "steps", "batch_size", "checkpoint_every", "preview_every", "log_every")
        _check_weights(self, "lr", "lr_gamma", positive=True)


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run of one movement needs, written as config.json."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _check_counts(config: Any, *names: str, positive: bool = True) -> None:
    """Refuse (``UsageError``) settings that are not whole numbers above 0 (or at least 0)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if positive else 0):
            raise UsageError(f"{name.replace('_', '-')} {value!r} must be a whole number, "
                             f"{'1' if positive else '0'} or more")


def _check_weights(config: Any, *names: str, positive: bool = False) -> None:
    """Refuse (``UsageError``) settings that are not finite numbers above 0 (or at least 0)."""
    for name in names:
        value = getattr(config, name)
        ok = isinstance(value, (int, float)) and math.isfinite(value) and (value > 0 if positive else value >= 0)
        if not ok:
            raise UsageError(f"{name.replace('_', '-')} {value!r} must be a finite number, "
                             f"{'above 0' if positive else '0 or more'}")


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, JSON-ready dict (tuples become lists)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config dataclass from a plain dict; unknown keys raise ``UsageError``."""
    if not isinstance(data, dict):
        raise UsageError(f"expected a mapping for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UsageError(
            f"unknown {cls.__name__} setting(s): {', '.join(unknown)}; known: {', '.join(fields)}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        default = fields[name].default_factory  # type: ignore[misc]
        if dataclasses.is_dataclass(default):
            value = from_dict(default, value)  # type: ignore[arg-type]
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


# Named loss settings. "default" is the mean Gram at weight 0.5 ("gram" is the same): at equal
# settings it scored better than the sliced loss on the movement judge of `artstyle evaluate` for
# six movements of eight (docs/models.md); "sliced" is the sliced style loss at weight 5, the
# default of two earlier rounds, still the better one for modern_art; the two "original-*" presets
# reproduce the seed project's settings (its layer weights, with its light or heavy style weight;
# mean Gram), rescaled to our normalisation.
_MEAN_GRAM = {"style_loss": "gram", "style_weight": 0.5}
LOSS_PRESETS: dict[str, dict[str, Any]] = {
    "default": _MEAN_GRAM,
    "gram": _MEAN_GRAM,
    "sliced": {"style_loss": "sliced", "style_weight": 5.0},
    "original-light": {
        "style_loss": "gram",
        "style_layer_weights": (1.0, 0.8, 0.4, 0.2, 0.2),
        "style_weight": 0.3,
        "tv_weight": 0.5,
    },
    "original-heavy": {
        "style_loss": "gram",
        "style_layer_weights": (0.2, 0.2, 0.4, 0.3, 0.2),
        "style_weight": 3.0,
        "tv_weight": 5.0,
    },
}


def loss_preset(name: str, **overrides: Any) -> LossConfig:
    """The LossConfig of a named preset, with any non-None overrides applied."""
    if name not in LOSS_PRESETS:
        raise UsageError(f"unknown loss preset {name!r}; choose one of: {', '.join(LOSS_PRESETS)}")
    values = {**LOSS_PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    return LossConfig(preset=name, **values)


# `artstyle distil`'s defaults: a student of 8 channels (a quarter of the full width), taught on
# 192 px crops for 600 steps, at a higher learning rate than training from paintings needs
DISTIL_CHANNELS = 8
DISTIL_IMAGE_SIZE = 192
DISTIL_TRAIN = TrainConfig(steps=600, lr=2e-3)
