"""Stylizing on the CPU without PyTorch: a model's ONNX export, compiled by OpenVINO.

Starting PyTorch takes over a second, longer than painting a 1024 px photo with a ``-fast``
model; OpenVINO starts in a tenth of that and runs bf16 on CPUs with AMX or AVX-512 BF16. The
ONNX export of each model folder is made once (that once imports PyTorch) and cached under
``<cache>/onnx/``, keyed by a hash of the folder's weights and config; OpenVINO caches what it
compiles from it under ``<cache>/openvino/``.

Covers the plain case: a one-movement model at full strength, no colour preservation, images
small enough to paint whole. Everything else goes through :class:`artstyle.stylize.Stylizer`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import platform
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .catalog import CONFIG_FILE, MODEL_FILE, default_cache_dir, read_model_config
from .errors import ArtstyleError, ModelError, UsageError
from .image import atomic_write, from_array, resize_max, to_array

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the exported graph changes, so old cache entries are not used
COMPILED_SHAPES = 4  # compiled networks kept per model, one per input size
OPENVINO_PRECISION = {"auto": None, "fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def gpu_may_exist() -> bool:
    """Whether PyTorch might find a GPU here (an NVIDIA or AMD driver, Apple silicon), judged without
    importing PyTorch."""
    return (Path("/proc/driver/nvidia/version").exists() or Path("/dev/kfd").exists()
            or (sys.platform == "darwin" and platform.machine() == "arm64"))


def cached_onnx(folder: Path, cache_dir: Path | None = None) -> Path:
    """The ONNX export of a model folder: from the cache, or made now and cached."""
    digest = hashlib.sha256(f"artstyle-onnx-{EXPORT_VERSION}".encode())
    for name in (MODEL_FILE, CONFIG_FILE):
        digest.update((folder / name).read_bytes())
    path = (cache_dir or default_cache_dir()) / "onnx" / f"{digest.hexdigest()[:32]}.onnx"
    if not path.is_file():
        from .export import onnx_bytes

        log.info("exporting %s to ONNX for OpenVINO (once; cached in %s)", folder, path.parent)
        data = onnx_bytes(folder)
        atomic_write(path, lambda f: f.write(data))
    return path


class OpenVinoStylizer:
    """A one-movement model folder compiled by OpenVINO for this CPU; called on PIL images.

    ``precision``: ``auto`` lets OpenVINO choose (bf16 on CPUs with AMX or AVX-512 BF16, else fp32).
    """

    def __init__(self, folder: Path, precision: str = "auto", cache_dir: Path | None = None) -> None:
        if precision not in OPENVINO_PRECISION:
            raise UsageError(f"unknown precision {precision!r}; choose one of: {', '.join(OPENVINO_PRECISION)}")
        try:
            import openvino
        except ImportError:
            raise ArtstyleError("the OpenVINO engine needs openvino: pip install 'artstyle[fast]'") from None
        self.config = read_model_config(folder)
        if self.config["model"].get("conditional", False):
            raise UsageError(f"{folder} is a joint model: the OpenVINO engine runs one-movement models; "
                             "use --engine torch")
        self.movements: list[str] = list(self.config["model"]["movements"])
        self.name = str(self.config.get("name") or self.movements[0])
        cache_dir = cache_dir or default_cache_dir()
        self._core = openvino.Core()
        self._core.set_property({"CACHE_DIR": str(cache_dir / "openvino")})  # compiled networks: ~60 ms less per start
        self._properties: dict[str, Any] = {}
        if OPENVINO_PRECISION[precision]:
            self._properties["INFERENCE_PRECISION_HINT"] = OPENVINO_PRECISION[precision]
        path = cached_onnx(folder, cache_dir)
        try:
            self._network = self._core.read_model(str(path))
        except Exception as err:
            raise ModelError(f"{path}: OpenVINO cannot read this cached export ({err}); delete it") from None
        self._compiled: OrderedDict[tuple[int, int], Any] = OrderedDict()

    def label(self, movement: object = None) -> str:
        return self.name

    def _network_for(self, height: int, width: int) -> Any:
        """The network compiled for one input size (OpenVINO runs a static shape fastest)."""
        key = (height, width)
        if key not in self._compiled:
            self._network.reshape({"image": [1, 3, height, width]})
            self._compiled[key] = self._core.compile_model(self._network, "CPU", self._properties)
            if len(self._compiled) > COMPILED_SHAPES:
                self._compiled.popitem(last=False)
        self._compiled.move_to_end(key)
        return self._compiled[key]

    def stylize_array(self, images: np.ndarray) -> np.ndarray:
        """(1, 3, H, W) float32 in [0, 1] -> the same shape, stylized."""
        network = self._network_for(images.shape[2], images.shape[3])
        return np.asarray(network({"image": images})[network.output("stylized")])

    def __call__(self, image: Image.Image, size: int | None = None) -> Image.Image:
        """Stylize one PIL image; ``size`` bounds the longest side of the output (px)."""
        return from_array(self.stylize_array(to_array(resize_max(image.convert("RGB"), size))))
