"""ONNX export, and running exported models with ONNX Runtime.

``export_onnx`` writes a graph with dynamic batch, height and width; a joint model takes a second
input, ``style`` (movements,), the mixing weights. The model's config.json travels inside the file
(metadata ``artstyle_config``), so ``artstyle stylize --model model.onnx`` knows its movements.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import ArtstyleError, ModelError
from .image import atomic_write, open_image, psnr, resize_max, to_tensor
from .stylize import Stylizer
from .training.checkpoint import load_model

log = logging.getLogger(__name__)

OPSET = 17


@dataclass(frozen=True)
class ExportReport:
    path: Path
    max_abs_diff: float  # ONNX Runtime vs PyTorch, pixel values in [0, 1]
    psnr_db: float
    size_bytes: int


def _require(module: str, extra: str = "onnx") -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ArtstyleError(f"ONNX support needs {module}: pip install 'artstyle[{extra}]'") from None


def export_onnx(folder: Path, output: Path, check_image: Path) -> ExportReport:
    """Export a model folder to ``output`` and compare ONNX Runtime with PyTorch on ``check_image``."""
    model, config = load_model(folder)
    data = _graph_bytes(model, config)
    atomic_write(output, lambda f: f.write(data))
    photo = to_tensor(resize_max(open_image(check_image), 512))
    movements = len(config["model"]["movements"])
    style = torch.eye(movements)[0] if config["model"].get("conditional", False) else None
    with torch.no_grad():
        expected = model(photo, style)
    got = load_onnx_stylizer(output).model(photo, style)
    return ExportReport(output, float((got - expected).abs().max()), psnr(got, expected), len(data))


def onnx_bytes(folder: Path) -> bytes:
    """A model folder as a checked ONNX graph (fp32; dynamic batch, height and width), its config.json
    inside as metadata."""
    return _graph_bytes(*load_model(folder))


def _graph_bytes(model: nn.Module, config: dict[str, Any]) -> bytes:
    onnx = _require("onnx")
    conditional = bool(config["model"].get("conditional", False))
    movements = len(config["model"]["movements"])
    example = torch.rand(1, 3, 66, 70)  # not a multiple of 4: the padding path is traced
    inputs: tuple[torch.Tensor, ...] = (example,)
    names = ["image"]
    axes: dict[str, dict[int, str]] = {"image": {0: "batch", 2: "height", 3: "width"},
                                       "stylized": {0: "batch", 2: "height", 3: "width"}}
    if conditional:
        inputs = (example, torch.full((movements,), 1.0 / movements))
        names.append("style")
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes and instance norm are expected
        torch.onnx.export(_Exportable(model), inputs, buffer,  # type: ignore[arg-type]
                          input_names=names, output_names=["stylized"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = "artstyle_config", json.dumps(config)
    onnx.checker.check_model(proto)
    return bytes(proto.SerializeToString())


class _Exportable(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(image, style)


class OnnxNet:
    """An exported network run by ONNX Runtime, called like the PyTorch one: (images, style)."""

    def __init__(self, path: Path) -> None:
        ort = _require("onnxruntime")
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:
            raise ModelError(f"{path}: ONNX Runtime cannot load it ({err})") from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, images: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        feeds = {"image": images.detach().cpu().float().numpy()}
        if "style" in self.input_names:
            if style is None:
                raise ModelError("this ONNX model paints several movements: say which")
            feeds["style"] = style.detach().cpu().float().numpy()
        (out,) = self.session.run(["stylized"], feeds)
        return torch.from_numpy(np.asarray(out))


def load_onnx_stylizer(path: Path) -> Stylizer:
    """A Stylizer (CPU) backed by ONNX Runtime, with the config stored in the file."""
    onnx = _require("onnx")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise ModelError(f"{path}: not an ONNX file ({err})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if "artstyle_config" not in meta:
        raise ModelError(f"{path}: not exported by 'artstyle export' (no artstyle_config metadata)")
    return Stylizer(OnnxNet(path), json.loads(meta["artstyle_config"]), "cpu")
