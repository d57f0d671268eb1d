"""The published model: a folder of ``model.safetensors`` + ``config.json``, owned by this module.

``config.json`` holds the run config that rebuilds the network (:class:`~artstyle.config.RunConfig`)
and what training recorded (:class:`TrainingRecord`); this module alone reads and writes it, in
the manner of diffusers' ``ConfigMixin`` (``save_pretrained`` / ``from_pretrained``). Everyone else
gets a :class:`ModelFolder`. A model is referred to by a shipped model's name (``baroque``), a model
folder, a run folder holding several, or an ``.onnx`` file written by ``artstyle export`` (its
config.json travels inside it): :func:`resolve_models` and :meth:`ModelFolder.from_pretrained` turn
any of these into ModelFolders.

Light on purpose: PyTorch is imported only to save or load weights.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import DataConfig, LossConfig, RunConfig, TrainConfig, from_dict, to_dict
from .errors import ArtstyleError, ModelError, UsageError
from .image import atomic_write

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FAST_SUFFIX = "-fast"  # shipped quarter-width variants, distilled from the full models: baroque-fast, ...
ONNX_CONFIG_KEY = "artstyle_config"  # metadata of an exported .onnx file: its model's config.json
_FIELD_TYPES: dict[str, type] = {"loss": LossConfig, "data": DataConfig, "train": TrainConfig}


@dataclass(frozen=True)
class PaintingsRecord:
    """What one movement's style was learnt from."""

    folders: tuple[str, ...] = ()  # absolute paths of the movement's folders
    sampled: int = 0  # paintings drawn (at most --max-paintings)
    used: int = 0  # of those, readable
    skipped: int = 0
    style_target_key: str = ""  # the cache key of its style target


@dataclass(frozen=True)
class DistillationRecord:
    """What a student network (``artstyle distil``) learnt from: its teacher, and the loss weights."""

    teacher: str = ""  # the teacher's name
    teacher_path: str = ""  # where it was read from
    teacher_channels: int = 0
    teacher_residual_blocks: int = 0
    pixel_weight: float = 0.0
    feature_weight: float = 0.0
    feature_layers: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainingRecord:
    """What a training run did: how long, where, on what."""

    steps: int = 0
    seconds: float = 0.0
    device: str = ""
    precision: str = ""
    processes: int = 1  # torchrun processes, each taking --batch-size photos per step
    photos_folder: str | None = None  # the first photo folder; evaluate's default photos for its judge
    photo_sources: tuple[str, ...] = ()
    photos_trained: int = 0
    photos_skipped: int = 0
    preview_photos: tuple[str, ...] = ()  # names of the photos held out for preview.png
    paintings: dict[str, PaintingsRecord] = field(default_factory=dict)  # by movement
    distilled: DistillationRecord | None = None  # a distilled student's teacher; None when trained on the objective


@dataclass(frozen=True)
class ModelFolder:
    """A published model, as its config.json describes it.

    Args:
        name: the model's name, e.g. ``baroque`` or ``joint``.
        config: the run config; ``config.model`` rebuilds the network, its ``movements`` in order.
        trained: what training recorded (None for a model not made by ``artstyle train``).
        vgg_weights_id: which VGG-19 weights the losses used.
        artstyle_version: the version that wrote it.
        path: where it was read from: the folder, or the ``.onnx`` file; None before it is saved.
    """

    name: str
    config: RunConfig
    trained: TrainingRecord | None = None
    vgg_weights_id: str = ""
    artstyle_version: str = __version__
    path: Path | None = None

    @property
    def movements(self) -> tuple[str, ...]:
        return self.config.model.movements

    @property
    def conditional(self) -> bool:
        """Whether one network paints several movements (and their blends)."""
        return self.config.model.conditional

    @property
    def is_onnx(self) -> bool:
        """Whether this is an exported ``.onnx`` file rather than a folder of weights."""
        return self.path is not None and self.path.suffix == ".onnx" and not self.path.is_dir()

    def paintings(self, movement: str) -> PaintingsRecord:
        """What ``movement``'s style was learnt from (an empty record when nothing was recorded)."""
        return (self.trained.paintings.get(movement) if self.trained else None) or PaintingsRecord()

    def to_dict(self) -> dict[str, Any]:
        """config.json's content."""
        data: dict[str, Any] = {"artstyle_version": self.artstyle_version, "name": self.name, **to_dict(self.config),
                                "vgg_weights_id": self.vgg_weights_id}
        if self.trained is not None:
            data["trained"] = dataclasses.asdict(self.trained)
        return data

    @classmethod
    def from_dict(cls, data: Any, path: Path | None = None) -> ModelFolder:
        """A ModelFolder from config.json's content; raises ``ModelError`` saying what is wrong."""
        where = path / CONFIG_FILE if path is not None and not path.suffix else path
        try:
            data = dict(data)
            data.pop("movements", None)  # written twice by artstyle before 0.1.0's model folder type
            trained = data.pop("trained", None)
            record = None if trained is None else _training_record(trained, where)
            name = str(data.pop("name", None) or "+".join(data["model"]["movements"]))
            version = str(data.pop("artstyle_version", ""))
            weights_id = str(data.pop("vgg_weights_id", ""))
            # the network's settings must all be understood; the rest may come from a newer artstyle
            sections = {"model": dict(data.pop("model"))}
            for section in ("loss", "data", "train"):
                if section in data:
                    sections[section] = _known(_FIELD_TYPES[section], dict(data.pop(section)), f"{section} ", where)
            if data:  # what is left is no setting this artstyle knows
                log.debug("%s: ignoring setting(s) this artstyle does not know: %s", where, ", ".join(sorted(data)))
            model = ModelFolder(name=name, artstyle_version=version, vgg_weights_id=weights_id,
                                config=from_dict(RunConfig, sections), trained=record, path=path)
        except (ValueError, KeyError, TypeError, ArtstyleError) as err:
            raise ModelError(f"{where}: not a valid artstyle model config ({err})") from None
        if not model.movements:
            raise ModelError(f"{where}: not a valid artstyle model config (it names no movement)")
        return model

    @classmethod
    def from_pretrained(cls, ref: str | Path) -> ModelFolder:
        """The one model ``ref`` names: a shipped model's name, a model folder, an ``.onnx`` file, or a
        run folder holding exactly one model. Raises ``ModelError`` (or ``UsageError`` when ``ref``
        holds several) saying what to give instead."""
        models = resolve_models([ref])
        if len(models) != 1:
            raise UsageError(f"{ref} holds {len(models)} models; pick one: "
                             + ", ".join(str(m.path) for m in models))
        return models[0]

    @classmethod
    def read(cls, folder: str | Path) -> ModelFolder:
        """A model folder's config.json (the weights are read by :meth:`load_network`)."""
        folder = Path(folder)
        if not folder.exists():
            raise ModelError(f"{folder}: no such model folder")
        if not is_model_folder(folder):
            raise ModelError(f"{folder}: not a model folder (needs {MODEL_FILE} and {CONFIG_FILE}); "
                             "give a folder written by 'artstyle train', e.g. runs/NAME/<movement>")
        try:
            data = json.loads((folder / CONFIG_FILE).read_text())
        except (OSError, ValueError) as err:
            raise ModelError(f"{folder / CONFIG_FILE}: not a valid artstyle model config ({err})") from None
        return cls.from_dict(data, folder)

    @classmethod
    def read_onnx(cls, path: str | Path) -> ModelFolder:
        """The config an ``artstyle export`` file carries."""
        path = Path(path)
        try:
            import onnx
        except ImportError:
            raise ArtstyleError("ONNX support needs onnx: pip install 'artstyle[onnx]'") from None
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as err:
            raise ModelError(f"{path}: not an ONNX file ({err})") from None
        meta = {p.key: p.value for p in proto.metadata_props}
        if ONNX_CONFIG_KEY not in meta:
            raise ModelError(f"{path}: not exported by 'artstyle export' (no {ONNX_CONFIG_KEY} metadata)")
        try:
            data = json.loads(meta[ONNX_CONFIG_KEY])
        except ValueError as err:
            raise ModelError(f"{path}: its {ONNX_CONFIG_KEY} metadata is not JSON ({err})") from None
        return cls.from_dict(data, path)

    def save_pretrained(self, folder: str | Path, network: nn.Module) -> ModelFolder:
        """Publish ``network`` (unwrapped from DDP or torch.compile) as ``folder/model.safetensors``
        (float16) + ``folder/config.json``, each written atomically; returns the saved ModelFolder."""
        import torch
        from safetensors.torch import save

        folder = Path(folder)
        network = unwrap(network)
        state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in network.state_dict().items()}
        data = save(state, metadata={"format": "pt"})
        atomic_write(folder / MODEL_FILE, lambda f: f.write(data))
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        atomic_write(folder / CONFIG_FILE, lambda f: f.write(text.encode()))
        return dataclasses.replace(self, path=folder)

    def load_network(self) -> nn.Module:
        """The network in float32, eval mode, on the CPU."""
        from safetensors.torch import load_file

        from .models import build_model

        if self.path is None or self.is_onnx:
            raise ModelError(f"{self.path or self.name}: no PyTorch weights to load (an exported or unsaved model)")
        network = build_model(self.config.model)
        try:
            state = load_file(str(self.path / MODEL_FILE))
            network.load_state_dict({k: v.float() for k, v in state.items()})
        except Exception as err:
            raise ModelError(f"{self.path / MODEL_FILE}: weights do not load into the configured "
                             f"network ({err})") from None
        return network.eval()


def _training_record(data: dict[str, Any], where: Path | None) -> TrainingRecord:
    data = dict(data)
    paintings = {}
    for movement, entry in dict(data.pop("paintings", {})).items():
        entry = dict(entry)
        if "folder" in entry:  # one folder per movement, before movements could be unions of folders
            entry["folders"] = [entry.pop("folder")]
        paintings[movement] = from_dict(PaintingsRecord, _known(PaintingsRecord, entry, "trained paintings ", where))
    distilled = data.pop("distilled", None)
    if distilled is not None:
        distilled = from_dict(DistillationRecord, _known(DistillationRecord, dict(distilled), "distilled ", where))
    record = from_dict(TrainingRecord, _known(TrainingRecord, data, "trained ", where))
    return dataclasses.replace(record, paintings=paintings, distilled=distilled)


def _known(cls: type, data: dict[str, Any], what: str, where: Path | None) -> dict[str, Any]:
    """``data`` without the keys ``cls`` has no field for (a newer artstyle's, say), which are logged."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        log.debug("%s: ignoring %ssetting(s) this artstyle does not know: %s", where, what, ", ".join(unknown))
    return {k: v for k, v in data.items() if k in fields}


def unwrap(network: nn.Module) -> nn.Module:
    """The plain module under DDP or torch.compile wrappers."""
    from torch import nn

    while True:
        inner = getattr(network, "module", None) or getattr(network, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return network
        network = inner


def is_model_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a published model (model.safetensors + config.json)."""
    folder = Path(folder)
    return (folder / MODEL_FILE).is_file() and (folder / CONFIG_FILE).is_file()


def shipped_models(fast: bool = True) -> dict[str, Path]:
    """The models that come with the package, by name (folders under ``artstyle/pretrained``);
    ``fast=False`` leaves out the quarter-width ``<movement>-fast`` variants."""
    root = Path(str(importlib.resources.files("artstyle") / "pretrained"))
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir())
            if is_model_folder(p) and (fast or not p.name.endswith(FAST_SUFFIX))}


def resolve_models(refs: Iterable[str | Path]) -> list[ModelFolder]:
    """The models that references name: a shipped model's name, a model folder, an exported ``.onnx``
    file, or a run folder holding several model folders; ``ModelError`` for anything else."""
    models: list[ModelFolder] = []
    shipped = shipped_models()
    for ref in refs:
        path = Path(ref)
        if not path.exists() and str(ref) in shipped:
            models.append(ModelFolder.read(shipped[str(ref)]))
        elif is_model_folder(path):
            models.append(ModelFolder.read(path))
        elif path.is_file() and path.suffix == ".onnx":
            models.append(ModelFolder.read_onnx(path))
        elif path.is_dir() and (inner := sorted(p for p in path.iterdir() if is_model_folder(p))):
            models.extend(ModelFolder.read(p) for p in inner)
        elif not path.exists():
            names = f" or a shipped model ({', '.join(shipped)})" if shipped else ""
            raise ModelError(f"{ref}: no such model folder; give a folder written by 'artstyle train'{names}")
        else:
            raise ModelError(f"{ref}: not a model folder (no {MODEL_FILE} + {CONFIG_FILE} in it "
                             "or in its sub-folders)")
    return models
