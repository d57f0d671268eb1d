from pathlib import Path

import pytest
import torch
from PIL import Image

from artstyle.errors import ModelError, UsageError
from artstyle.stylize import Stylizer, expand_model_refs, make_sheet, plan_outputs


def test_stylizer_loads_and_keeps_size(trained_run: Path) -> None:
    stylizer = Stylizer.from_pretrained(trained_run / "ember")
    assert stylizer.movement == "ember"
    photo = Image.new("RGB", (90, 61), (40, 120, 200))
    out = stylizer(photo)
    assert out.size == (90, 61) and out.mode == "RGB"
    assert stylizer(photo, size=45).size == (45, 31)
    batch = stylizer.stylize_tensor(torch.rand(2, 3, 33, 35))
    assert batch.shape == (2, 3, 33, 35)


def test_models_differ_by_movement(trained_run: Path) -> None:
    photo = Image.new("RGB", (64, 64), (128, 128, 128))
    a = torch.tensor(list(Stylizer.from_pretrained(trained_run / "ember")(photo).getdata())).float()
    b = torch.tensor(list(Stylizer.from_pretrained(trained_run / "lagoon")(photo).getdata())).float()
    assert (a - b).abs().mean() > 1.0


def test_expand_model_refs(trained_run: Path, tmp_path: Path) -> None:
    assert [p.name for p in expand_model_refs([trained_run])] == ["ember", "lagoon"]
    assert expand_model_refs([trained_run / "lagoon"]) == [trained_run / "lagoon"]
    with pytest.raises(ModelError, match="no such model folder"):
        expand_model_refs([tmp_path / "missing"])
    with pytest.raises(ModelError, match="not a model folder"):
        expand_model_refs([tmp_path])


def test_plan_outputs(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.png"):
        Image.new("RGB", (20, 20)).save(tmp_path / name)
    one = tmp_path / "a.jpg"
    assert plan_outputs([one], tmp_path / "out.jpg") == [(one, tmp_path / "out.jpg")]
    assert plan_outputs([one], tmp_path / "dir") == [(one, tmp_path / "dir" / "a.png")]
    pairs = plan_outputs([tmp_path], tmp_path / "dir")
    assert [dst.name for _, dst in pairs] == ["a.png", "b.png"]
    with pytest.raises(UsageError, match="need an output folder"):
        plan_outputs([tmp_path], tmp_path / "out.png")
    Image.new("RGB", (20, 20)).save(tmp_path / "a.png")
    with pytest.raises(UsageError, match="would both be written"):
        plan_outputs([tmp_path / "a.jpg", tmp_path / "a.png"], tmp_path / "dir")


def test_sheet_has_the_photo_and_each_model(trained_run: Path) -> None:
    stylizers = [Stylizer.from_pretrained(p) for p in expand_model_refs([trained_run])]
    photo = Image.new("RGB", (200, 100), (250, 250, 250))
    sheet = make_sheet(photo, stylizers, size=100, cell=100)
    assert sheet.width > 3 * 100 and sheet.height > 50
    assert sheet.getpixel((6 + 50, sheet.height - 6 - 25)) == (250, 250, 250)  # the original comes first
