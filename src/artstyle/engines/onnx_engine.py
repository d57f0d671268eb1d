"""The ONNX Runtime engine: an ``.onnx`` file written by ``artstyle export``, on the CPU. It paints
joint models, blends, strength and colour keeping as PyTorch does, but not in tiles: the exported
graph cannot share instance norm statistics across them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ArtstyleError, ModelError, UsageError
from ..model_folder import ModelFolder
from .base import Movement
from .torch_engine import TensorStylizer


class OnnxStylizer(TensorStylizer):
    """An exported model run by ONNX Runtime (``model.path`` is the ``.onnx`` file)."""

    engine = "onnxruntime"
    precision = "fp32"  # as exported

    def __init__(self, model: ModelFolder) -> None:
        super().__init__(model)
        try:
            import onnxruntime as ort
        except ImportError:
            raise ArtstyleError("ONNX support needs onnxruntime: pip install 'artstyle[onnx]'") from None
        try:
            self.session: Any = ort.InferenceSession(str(model.path), providers=["CPUExecutionProvider"])
        except Exception as err:
            raise ModelError(f"{model.path}: ONNX Runtime cannot load it ({err})") from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    def check(self, movement: Movement = None, strength: float = 1.0, preserve_color: bool = False,
              tile: int | None = None) -> None:
        super().check(movement, strength, preserve_color, tile)
        if tile:
            raise UsageError("an .onnx file cannot paint in tiles (its instance norms would not agree across "
                             "them); give the model folder, or --tile 0")

    def _run(self, images: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        feeds = {"image": images.detach().cpu().float().numpy()}
        if "style" in self.input_names:
            if style is None:
                raise ModelError("this ONNX model paints several movements: say which")
            feeds["style"] = style.detach().cpu().float().numpy()
        (out,) = self.session.run(["stylized"], feeds)
        return torch.from_numpy(np.asarray(out))
