"""Training: the photo and painting pipeline (``data``), the VGG-19 loss network (``vgg``), the
losses (``losses``), style targets per movement (``targets``), checkpoints (``checkpoint``),
torchrun/DDP (``distributed``), generated images for tests and the demo (``synthetic``) and the
loop that ties them together (``loop``: :func:`train`, :class:`TrainRequest`).

Inference never imports this package: ``artstyle stylize`` and the web server stay light.
"""

from typing import Any

__all__ = ["TrainRequest", "TrainResult", "train"]


def __getattr__(name: str) -> Any:  # lazy, so that importing one module of the package loads no other
    if name in __all__:
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
