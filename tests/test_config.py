import json
from dataclasses import replace

import pytest

from artstyle.config import LOSS_PRESETS, LossConfig, RunConfig, from_dict, loss_preset, to_dict
from artstyle.errors import UsageError


def test_round_trip_through_json() -> None:
    config = RunConfig(loss=loss_preset("original-heavy", content_layer="relu2_2"))
    back = from_dict(RunConfig, json.loads(json.dumps(to_dict(config))))
    assert back == config
    assert isinstance(back.loss.style_layers, tuple)


def test_unknown_keys_raise_and_name_the_known_ones() -> None:
    data = to_dict(RunConfig())
    data["train"]["stpes"] = 10
    with pytest.raises(UsageError, match="stpes.*known: steps"):
        from_dict(RunConfig, data)


def test_presets_differ_as_documented() -> None:
    light, heavy, default = (loss_preset(n) for n in ("original-light", "original-heavy", "default"))
    assert light.style_layer_weights == (1.0, 0.8, 0.4, 0.2, 0.2)
    assert heavy.style_layer_weights == (0.2, 0.2, 0.4, 0.3, 0.2)
    assert heavy.style_weight >= 10 * light.style_weight
    assert heavy.tv_weight > light.tv_weight
    # the default is the mean Gram at weight 0.5, as "gram" is and as old configs read
    assert replace(default, preset="gram") == loss_preset("gram") == replace(LossConfig(), preset="gram")
    sliced = loss_preset("sliced")
    assert sliced.style_loss == "sliced" and sliced.style_weight == 5.0
    assert from_dict(LossConfig, {"style_weight": 0.5}).style_loss == "gram"
    assert light.style_loss == heavy.style_loss == "gram"
    assert set(LOSS_PRESETS) == {"default", "gram", "sliced", "original-light", "original-heavy"}


def test_preset_overrides_and_unknown_preset() -> None:
    assert loss_preset("original-light", style_weight=7.0).style_weight == 7.0
    assert loss_preset("original-light", style_weight=None).style_weight == 0.3
    with pytest.raises(UsageError, match="choose one of: default"):
        loss_preset("impressionist")


def test_layer_weights_must_match_layers() -> None:
    with pytest.raises(UsageError, match="one weight per layer"):
        LossConfig(style_layer_weights=(1.0, 1.0))
