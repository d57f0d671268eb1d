from pathlib import Path

import pytest
import torch

from artstyle.config import ModelConfig
from artstyle.errors import ModelError
from artstyle.models import build_model
from artstyle.training.checkpoint import load_checkpoint, save_checkpoint


def test_checkpoint_is_weights_only_loadable(tmp_path: Path) -> None:
    model = build_model(ModelConfig(channels=8, residual_blocks=1))
    opt = torch.optim.Adam(model.parameters())
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 3,
                           "history": [{"step": 1.0, "total": 2.0}], "generators": [torch.Generator().get_state()]})
    state = torch.load(path, weights_only=True)
    assert state["step"] == 3 and load_checkpoint(path)["history"][0]["total"] == 2.0


def test_a_missing_or_broken_checkpoint_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    (tmp_path / "checkpoint.pt").write_bytes(b"junk")
    with pytest.raises(ModelError, match="unreadable checkpoint.*delete it"):
        load_checkpoint(tmp_path / "checkpoint.pt")
