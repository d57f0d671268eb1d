"""The model folder: config.json through dataclasses, weights through safetensors, references resolved."""

import json
from pathlib import Path

import pytest
import torch

from artstyle.config import LossConfig, ModelConfig, RunConfig, to_dict
from artstyle.errors import ModelError, UsageError
from artstyle.model_folder import ModelFolder, PaintingsRecord, TrainingRecord, resolve_models, unwrap
from artstyle.models import build_model


def _saved(folder: Path, movements: tuple[str, ...] = ("ember",), **model: object) -> ModelFolder:
    config = ModelConfig(channels=8, residual_blocks=1, movements=movements, **model)  # type: ignore[arg-type]
    record = TrainingRecord(steps=7, paintings={"ember": PaintingsRecord(folders=("/p/ember",), used=3)})
    return ModelFolder("ember", RunConfig(model=config), trained=record).save_pretrained(folder, build_model(config))


def test_model_round_trip_in_float32(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = ModelConfig(channels=8, residual_blocks=1, movements=("ember",))
    network = build_model(config).eval()
    saved = ModelFolder("ember", RunConfig(model=config, loss=LossConfig(style_weight=2.0))).save_pretrained(
        tmp_path / "m", network)
    read = ModelFolder.read(tmp_path / "m")
    assert read == saved and read.path == tmp_path / "m"
    assert read.movements == ("ember",) and read.config.loss.style_weight == 2.0 and not read.conditional
    loaded = read.load_network()
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loaded(x), network(x), atol=2e-3, rtol=0)  # weights stored as float16


def test_config_json_names_the_movements_once_and_keeps_the_training_record(tmp_path: Path) -> None:
    _saved(tmp_path / "m")
    data = json.loads((tmp_path / "m" / "config.json").read_text())
    assert "movements" not in data and data["model"]["movements"] == ["ember"]
    read = ModelFolder.read(tmp_path / "m")
    assert read.trained is not None and read.trained.steps == 7
    assert read.paintings("ember").folders == ("/p/ember",) and read.paintings("other") == PaintingsRecord()


def test_configs_of_the_earlier_layout_still_read(tmp_path: Path) -> None:
    _saved(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    data = json.loads(path.read_text())
    data["movements"] = ["ember"]  # written twice before the model folder type
    data["trained"]["paintings"] = {"ember": {"folder": "/old/ember", "used": 3}}  # one folder per movement
    path.write_text(json.dumps(data))
    assert ModelFolder.read(tmp_path / "m").paintings("ember").folders == ("/old/ember",)


def test_saves_the_unwrapped_module(tmp_path: Path) -> None:
    class Wrapper(torch.nn.Module):
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self.module = module

    config = ModelConfig(channels=8, residual_blocks=1, movements=("m",))
    inner = build_model(config)
    assert unwrap(Wrapper(inner)) is inner
    ModelFolder("m", RunConfig(model=config)).save_pretrained(tmp_path / "m", Wrapper(inner))
    ModelFolder.read(tmp_path / "m").load_network()  # keys carry no "module." prefix


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model folder"):
        ModelFolder.read(tmp_path / "nothing")
    with pytest.raises(ModelError, match="not a model folder.*artstyle train"):
        ModelFolder.read(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a valid artstyle model config"):
        ModelFolder.read(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model": to_dict(ModelConfig(channels=8))}))
    with pytest.raises(ModelError, match="names no movement"):
        ModelFolder.read(tmp_path)
    model = to_dict(ModelConfig(channels=8, movements=("a",)))
    (tmp_path / "config.json").write_text(json.dumps({"model": {**model, "wings": 2}}))
    with pytest.raises(ModelError, match="unknown ModelConfig setting.*wings"):  # the network must be understood
        ModelFolder.read(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model": to_dict(ModelConfig(channels=8, movements=("a",)))}))
    with pytest.raises(ModelError, match="do not load"):
        ModelFolder.read(tmp_path).load_network()


def test_settings_of_a_newer_artstyle_outside_the_network_are_ignored(tmp_path: Path) -> None:
    _saved(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    data = json.loads(path.read_text())
    data["description"] = "from the future"
    data["loss"]["style_mix"] = 0.5
    data["trained"]["gpu_name"] = "H900"
    data["trained"]["paintings"]["ember"]["licence"] = "public domain"
    path.write_text(json.dumps(data))
    read = ModelFolder.read(tmp_path / "m")
    assert read.trained is not None and read.trained.steps == 7 and read.paintings("ember").used == 3
    read.load_network()


def test_references_resolve_to_model_folders(trained_run: Path, tmp_path: Path) -> None:
    assert [m.name for m in resolve_models([trained_run])] == ["ember", "lagoon"]
    assert [m.path for m in resolve_models([trained_run / "lagoon"])] == [trained_run / "lagoon"]
    assert ModelFolder.from_pretrained(trained_run / "lagoon").name == "lagoon"
    with pytest.raises(UsageError, match="holds 2 models; pick one"):
        ModelFolder.from_pretrained(trained_run)
    with pytest.raises(ModelError, match="no such model folder"):
        resolve_models([tmp_path / "missing"])
    with pytest.raises(ModelError, match="not a model folder"):
        resolve_models([tmp_path])
