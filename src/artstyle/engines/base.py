"""What every engine offers: the :class:`Stylizer` protocol, and the parts of it that do not depend
on the engine (which movement to paint, labels, option checks). No PyTorch here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from PIL import Image

from ..errors import UsageError
from ..model_folder import ModelFolder

if TYPE_CHECKING:
    import torch

Blend = dict[str, float]  # movement -> weight
Movement = str | Blend | None  # one movement, a blend of a joint model's movements, or the model's own


@runtime_checkable
class Stylizer(Protocol):
    """A loaded movement model, whichever engine runs it.

    A joint (multi-movement) model paints any of its movements, or a blend of them:
    ``stylizer(photo, movement="baroque")`` or ``movement={"baroque": 0.5, "cubism": 0.5}``.
    """

    model: ModelFolder
    engine: str  # "torch", "onnxruntime", "openvino", or "auto" (OpenVINO, PyTorch where it must)
    precision: str  # the number format the network runs in: fp32, bf16, fp16, or "auto" (the engine's own)

    @property
    def name(self) -> str: ...
    @property
    def movements(self) -> tuple[str, ...]: ...
    @property
    def conditional(self) -> bool: ...

    def check(self, movement: Movement = None, strength: float = 1.0, preserve_color: bool = False,
              tile: int | None = None) -> None:
        """Raise ``UsageError`` now, before any work, for options this model or engine cannot paint."""

    def label(self, movement: Movement = None) -> str:
        """A human label for what ``movement`` paints, e.g. ``baroque`` or ``baroque 50% + cubism 50%``."""

    def __call__(self, image: Image.Image, size: int | None = None, movement: Movement = None,
                 strength: float = 1.0, preserve_color: bool = False, tile: int | None = None) -> Image.Image:
        """Stylize one PIL image.

        Args:
            image: any mode; painted as RGB.
            size: bound on the longest side of the output, px (None: the image's own size).
            movement: for a joint model, the movement or blend to paint.
            strength: 0..1, how much of the style (0 returns the photo).
            preserve_color: keep the photo's colours, take only the light of the result.
            tile: paint in overlapping tiles of this size, px (None: tiles only for very large
                images; 0: never).
        """

    def stylize_tensor(self, images: torch.Tensor, movement: Movement = None, strength: float = 1.0,
                       preserve_color: bool = False, tile: int | None = None) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1], on the input's device."""

    def engines_used(self) -> list[str]:
        """The engines that have painted so far (an ``auto`` stylizer may use two)."""


class StylizerBase:
    """The engine-independent half of a :class:`Stylizer`: names, movements, labels, option checks."""

    engine = "none"
    precision = "auto"

    def __init__(self, model: ModelFolder) -> None:
        self.model = model
        self._used: set[str] = set()

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def movements(self) -> tuple[str, ...]:
        return self.model.movements

    @property
    def conditional(self) -> bool:
        return self.model.conditional

    def movement_weights(self, movement: Movement) -> list[float] | None:
        """The mixing weights (one per movement, summing to 1) that ``movement`` asks of a joint model;
        None for a one-movement model. ``UsageError`` for a movement the model does not paint."""
        if isinstance(movement, str):
            movement = {movement: 1.0}
        if not self.conditional:
            if movement and set(movement) != set(self.movements):
                raise UsageError(f"this model paints only {self.movements[0]}; "
                                 f"--movement {', '.join(movement)} needs a joint model")
            return None
        if not movement:
            raise UsageError(f"this joint model paints several movements; choose with --movement, "
                             f"one of: {', '.join(self.movements)} (or a blend like "
                             f"{self.movements[0]}:0.5,{self.movements[1]}:0.5)")
        unknown = [m for m in movement if m not in self.movements]
        if unknown:
            raise UsageError(f"unknown movement {unknown[0]!r} for this model; choose from: "
                             f"{', '.join(self.movements)}")
        total = sum(movement.values())
        if any(w < 0 for w in movement.values()) or total <= 0:
            raise UsageError("blend weights must be positive, e.g. baroque:0.7,cubism:0.3")
        return [movement.get(m, 0.0) / total for m in self.movements]

    def check(self, movement: Movement = None, strength: float = 1.0, preserve_color: bool = False,
              tile: int | None = None) -> None:
        self.movement_weights(movement)
        if not 0.0 <= strength <= 1.0:
            raise UsageError(f"strength {strength} is outside 0..1")

    def label(self, movement: Movement = None) -> str:
        if movement is None:
            return self.name
        if isinstance(movement, str):
            return movement
        total = sum(movement.values())
        if len(movement) == 1:
            return next(iter(movement))
        return " + ".join(f"{m} {round(100 * w / total)}%" for m, w in movement.items())

    def engines_used(self) -> list[str]:
        return sorted(self._used)


def is_plain(movement: Movement = None, strength: float = 1.0, preserve_color: bool = False,
             tile: int | None = None) -> bool:
    """Whether a call asks for nothing but the model's own movement at full strength, painted whole."""
    return movement is None and strength == 1.0 and not preserve_color and not tile


def parse_movement(text: str | None) -> Movement:
    """``baroque`` -> "baroque"; ``baroque:0.5,cubism:0.5`` -> {"baroque": 0.5, "cubism": 0.5}."""
    if not text:
        return None
    if ":" not in text and "," not in text:
        return text.strip()
    blend: Blend = {}
    for part in text.split(","):
        name, _, weight = part.partition(":")
        try:
            blend[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise UsageError(f"--movement {text!r}: write a blend as baroque:0.5,cubism:0.5") from None
    return blend
