"""The ONNX Runtime engine: an ``.onnx`` file written by ``artstyle export``, on the CPU. It paints
joint models, blends, strength and colour keeping as PyTorch does, but not in tiles: the exported
graph cannot share instance norm statistics across them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ArtstyleError, ModelError
from ..model_folder import ModelFolder
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

    def _run(self, images: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        feeds = {"image": images.detach().cpu().float().numpy()}
        if "style" in self.input_names:
            if style is None:
                raise ModelError("this ONNX model paints several movements: say which")
            feeds["style"] = style.detach().cpu().float().numpy()
        (out,) = self.session.run(["stylized"], feeds)
        return torch.from_numpy(np.asarray(out))
