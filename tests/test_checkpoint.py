import json
from pathlib import Path

import pytest
import torch

from artstyle.catalog import read_model_config
from artstyle.config import ModelConfig, to_dict
from artstyle.errors import ModelError
from artstyle.models import build_model
from artstyle.training.checkpoint import load_checkpoint, load_model, save_checkpoint, save_model, unwrap


def test_model_round_trip_in_float32(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = ModelConfig(channels=8, residual_blocks=1, movements=("ember",))
    model = build_model(config).eval()
    save_model(tmp_path / "m", model, {"name": "ember", "model": to_dict(config)})
    loaded, saved_config = load_model(tmp_path / "m")
    assert saved_config["model"]["movements"] == ["ember"]
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model(x), atol=2e-3, rtol=0)  # weights stored as float16


def test_saves_the_unwrapped_module(tmp_path: Path) -> None:
    class Wrapper(torch.nn.Module):
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self.module = module

    config = ModelConfig(channels=8, residual_blocks=1)
    inner = build_model(config)
    assert unwrap(Wrapper(inner)) is inner
    save_model(tmp_path / "m", Wrapper(inner), {"model": to_dict(config)})
    load_model(tmp_path / "m")  # keys carry no "module." prefix


def test_checkpoint_is_weights_only_loadable(tmp_path: Path) -> None:
    model = build_model(ModelConfig(channels=8, residual_blocks=1))
    opt = torch.optim.Adam(model.parameters())
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 3,
                           "history": [{"step": 1.0, "total": 2.0}], "generators": [torch.Generator().get_state()]})
    state = torch.load(path, weights_only=True)
    assert state["step"] == 3 and load_checkpoint(path)["history"][0]["total"] == 2.0


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model folder"):
        load_model(tmp_path / "nothing")
    with pytest.raises(ModelError, match="not a model folder.*artstyle train"):
        load_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a valid artstyle model config"):
        read_model_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model": to_dict(ModelConfig(channels=8))}))
    with pytest.raises(ModelError, match="do not load"):
        load_model(tmp_path)
    with pytest.raises(ModelError, match="no checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")
