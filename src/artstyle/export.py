"""ONNX export: a model folder as a graph with dynamic batch, height and width; a joint model takes
a second input, ``style`` (movements,), the mixing weights. The model's config.json travels inside
the file (metadata ``artstyle_config``), so ``artstyle stylize --model model.onnx`` knows its
movements; :mod:`artstyle.engines.onnx_engine` runs it.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .engines.onnx_engine import OnnxStylizer
from .errors import ArtstyleError
from .image import atomic_write, open_image, psnr, resize_max, to_tensor
from .model_folder import ONNX_CONFIG_KEY, ModelFolder

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


def export_onnx(model: ModelFolder, output: Path, check_image: Path) -> ExportReport:
    """Export a model folder to ``output`` and compare ONNX Runtime with PyTorch on ``check_image``."""
    network = model.load_network()
    data = _graph_bytes(network, model)
    atomic_write(output, lambda f: f.write(data))
    photo = to_tensor(resize_max(open_image(check_image), 512))
    style = torch.eye(len(model.movements))[0] if model.conditional else None
    with torch.no_grad():
        expected = network(photo, style)
    got = OnnxStylizer(ModelFolder.read_onnx(output))._run(photo, style)
    return ExportReport(output, float((got - expected).abs().max()), psnr(got, expected), len(data))


def onnx_bytes(folder: Path) -> bytes:
    """A model folder as a checked ONNX graph (fp32; dynamic batch, height and width), its config.json
    inside as metadata."""
    model = ModelFolder.read(folder)
    return _graph_bytes(model.load_network(), model)


def _graph_bytes(network: nn.Module, model: ModelFolder) -> bytes:
    onnx = _require("onnx")
    movements = len(model.movements)
    example = torch.rand(1, 3, 66, 70)  # not a multiple of 4: the padding path is traced
    inputs: tuple[torch.Tensor, ...] = (example,)
    names = ["image"]
    axes: dict[str, dict[int, str]] = {"image": {0: "batch", 2: "height", 3: "width"},
                                       "stylized": {0: "batch", 2: "height", 3: "width"}}
    if model.conditional:
        inputs = (example, torch.full((movements,), 1.0 / movements))
        names.append("style")
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes and instance norm are expected
        torch.onnx.export(_Exportable(network), inputs, buffer,  # type: ignore[arg-type]
                          input_names=names, output_names=["stylized"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_CONFIG_KEY, json.dumps(model.to_dict())
    onnx.checker.check_model(proto)
    return bytes(proto.SerializeToString())


class _Exportable(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(image, style)
