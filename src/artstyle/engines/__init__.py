"""Engines that run a movement model, all behind one :class:`Stylizer` protocol:

* ``torch_engine``: PyTorch, any device; joint models, blends, strength, colour keeping, tiles;
* ``onnx_engine``: ONNX Runtime, for ``.onnx`` files written by ``artstyle export``;
* ``openvino_engine``: OpenVINO on the CPU, without starting PyTorch;
* ``choose``: :func:`load`, the one policy for which of them runs a model.

>>> from artstyle import load
>>> stylizer = load("baroque")                  # a shipped model, a model folder or an .onnx file
>>> stylizer(open_image("photo.jpg"), size=1024).save("baroque.png")
"""

from .base import Blend, Movement, Stylizer, parse_movement
from .choose import ENGINES, load

__all__ = ["ENGINES", "Blend", "Movement", "Stylizer", "load", "parse_movement"]
