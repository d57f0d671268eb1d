"""Which engine runs a model: the one policy that the CLI, the web server and the Python API share."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..errors import ArtstyleError, UsageError
from ..image import bounded_size, tile_for
from ..model_folder import ModelFolder
from . import openvino_engine
from .base import Movement, Stylizer, StylizerBase, is_plain

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

ENGINES = ("auto", "openvino", "torch", "onnxruntime")


def load(ref: str | Path | ModelFolder, engine: str = "auto", device: Any = "auto", precision: str = "auto",
         compile: bool = False) -> Stylizer:
    """A stylizer for one model, run by the best engine for it here.

    Args:
        ref: a shipped model's name (``baroque``), a model folder, an ``.onnx`` file written by
            ``artstyle export``, or a :class:`~artstyle.model_folder.ModelFolder`.
        engine: ``auto``: OpenVINO for a one-movement model on the CPU when it is installed
            (``artstyle[fast]``; no PyTorch start-up), with PyTorch loaded only for calls OpenVINO
            cannot paint (tiles, strength, colour keeping); ONNX Runtime for an ``.onnx`` file;
            PyTorch otherwise. ``openvino``, ``torch`` or ``onnxruntime`` insist on one (an ``.onnx``
            file always runs in ONNX Runtime, but for ``openvino``, which refuses it).
        device: ``auto`` (CUDA, then Apple MPS, then the CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``, or a
            ``torch.device``.
        precision: ``auto`` (each engine's fastest that keeps the picture: on OpenVINO bf16 where the CPU
            has AMX, else int8), fp32, bf16, fp16, or int8 (OpenVINO only).
        compile: ``torch.compile`` the network (PyTorch only; pays for many images of one size).
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    model = ref if isinstance(ref, ModelFolder) else ModelFolder.from_pretrained(ref)
    device_name = str(device)
    if model.is_onnx:  # run by ONNX Runtime, whatever the engine asked, but OpenVINO's (it makes its own export)
        if engine == "openvino":
            raise UsageError(f"--engine openvino takes a model folder (it makes its own export), not "
                             f"{model.path.name if model.path else model.name}; give the folder, or use "
                             "--engine torch to run the .onnx file with ONNX Runtime")
        if compile:
            raise UsageError("--compile applies to PyTorch models; give the model folder, not the .onnx file")
        if precision not in ("auto", "fp32"):
            raise UsageError(f"an .onnx file runs as exported, in fp32, not {precision}; give the model folder "
                             "for other precisions")
        from .onnx_engine import OnnxStylizer

        return OnnxStylizer(model)
    if engine == "onnxruntime":
        raise UsageError("--engine onnxruntime runs .onnx files: write one with 'artstyle export', or use "
                         "--engine auto")
    if engine == "openvino":
        if device_name not in ("auto", "cpu"):
            raise UsageError(f"--engine openvino runs on the CPU, not --device {device_name}; "
                             "use --engine torch for other devices")
        return openvino_engine.OpenVinoStylizer(model, precision)
    on_cpu = device_name == "cpu" or (device_name == "auto" and not openvino_engine.gpu_may_exist())
    if (engine == "auto" and on_cpu and not compile and not model.conditional
            and openvino_engine.openvino_available()):
        return AutoStylizer(model, device, precision)
    from .torch_engine import TorchStylizer

    return TorchStylizer(model, device=device, precision=precision, compile=compile)


class AutoStylizer(StylizerBase):
    """OpenVINO for what it paints (whole images, the model's own movement, full strength), PyTorch
    for the rest; each loaded when first needed, so a job OpenVINO cannot paint never exports the
    model for it, and one it can never starts PyTorch. Where OpenVINO cannot start (an unwritable
    cache, a failed export), PyTorch paints everything, after one warning."""

    engine = "auto"

    def __init__(self, model: ModelFolder, device: Any = "auto", precision: str = "auto") -> None:
        super().__init__(model)
        self.precision = openvino_engine.resolve_precision(precision)
        self._device, self._precision = device, precision
        self._fast: openvino_engine.OpenVinoStylizer | None = None
        self._fast_failed = False
        self._torch: Any = None

    @property
    def fast(self) -> openvino_engine.OpenVinoStylizer | None:
        """The OpenVINO stylizer (made on first use), or None where it cannot start."""
        if self._fast is None and not self._fast_failed:
            try:
                self._fast = openvino_engine.OpenVinoStylizer(self.model, self._precision)
            except (ArtstyleError, OSError) as err:
                log.warning("the OpenVINO engine is unavailable (%s); using PyTorch", err)
                self._fast_failed = True
        return self._fast

    @property
    def pytorch(self) -> Any:
        """The PyTorch stylizer of the same model (loaded on first use)."""
        if self._torch is None:
            from .torch_engine import TorchStylizer

            precision = "auto" if self._precision == "int8" else self._precision  # int8 is OpenVINO's alone
            self._torch = TorchStylizer(self.model, device=self._device, precision=precision)
        return self._torch

    def _for(self, size: tuple[int, int] | None, movement: Movement, strength: float, preserve_color: bool,
             tile: int | None) -> Any:
        whole = size is None or not tile_for(size, tile)
        if is_plain(movement, strength, preserve_color, tile) and whole and self.fast is not None:
            return self.fast
        return self.pytorch

    def check(self, movement: Movement = None, strength: float = 1.0, preserve_color: bool = False,
              tile: int | None = None) -> None:
        if is_plain(movement, strength, preserve_color, tile):
            super().check(movement, strength, preserve_color, tile)  # without loading either engine
        else:
            self.pytorch.check(movement, strength, preserve_color, tile)

    def __call__(self, image: Image.Image, size: int | None = None, movement: Movement = None,
                 strength: float = 1.0, preserve_color: bool = False, tile: int | None = None) -> Image.Image:
        engine = self._for(bounded_size(image.size, size), movement, strength, preserve_color, tile)
        return engine(image, size, movement, strength, preserve_color, tile)  # type: ignore[no-any-return]

    def stylize_tensor(self, images: torch.Tensor, movement: Movement = None, strength: float = 1.0,
                       preserve_color: bool = False, tile: int | None = None) -> torch.Tensor:
        size = (int(images.shape[-1]), int(images.shape[-2]))
        engine = self._for(size, movement, strength, preserve_color, tile)
        return engine.stylize_tensor(images, movement, strength, preserve_color, tile)  # type: ignore[no-any-return]

    def engines_used(self) -> list[str]:
        engines = [e for e in (self._fast, self._torch) if e is not None]
        return sorted({name for e in engines for name in e.engines_used()})
