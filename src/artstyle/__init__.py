"""artstyle: learn the look of an art movement from its paintings and apply it to photos.

>>> import artstyle
>>> stylizer = artstyle.load("baroque")         # a shipped model, a model folder or an .onnx file
>>> stylizer(artstyle.open_image("photo.jpg"), size=1024).save("baroque.png")

The names below are loaded when first used, so ``import artstyle`` starts no PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load": "artstyle.engines",
    "Stylizer": "artstyle.engines",
    "parse_movement": "artstyle.engines",
    "ModelFolder": "artstyle.model_folder",
    "resolve_models": "artstyle.model_folder",
    "shipped_models": "artstyle.model_folder",
    "open_image": "artstyle.image",
    "save_image": "artstyle.image",
    "train": "artstyle.training",
    "TrainRequest": "artstyle.training",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'artstyle' has no attribute {name!r}")
