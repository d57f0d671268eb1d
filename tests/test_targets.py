from pathlib import Path

import pytest
import torch

from artstyle.errors import DataError, UsageError
from artstyle.image import open_image, to_tensor
from artstyle.training import targets as targets_module
from artstyle.training.data import Skipped
from artstyle.training.losses import gram_matrix
from artstyle.training.synthetic import painting
from artstyle.training.targets import StyleTarget, contrasted, prepare_painting, style_target, target_key
from artstyle.training.vgg import load_vgg19

LAYERS = ("relu1_1", "relu2_1")


@pytest.fixture(scope="module")
def vgg():  # type: ignore[no-untyped-def]
    return load_vgg19("oxford", last_layer="relu2_1")


@pytest.fixture()
def paintings(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(3):
        path = tmp_path / f"p{i}.png"
        painting("ember", size=80 + 16 * i, seed=i).save(path)
        paths.append(path)
    return paths


def test_target_is_the_mean_of_each_paintings_gram(vgg, paintings: list[Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = style_target(paintings, vgg, LAYERS, 48, torch.device("cpu"), None, Skipped())
    assert target.paintings == 3
    for layer in LAYERS:
        direct = torch.stack([
            gram_matrix(vgg(to_tensor(prepare_painting(open_image(p), 48)), [layer])[layer])[0] for p in paintings
        ]).mean(0)
        torch.testing.assert_close(target.grams[layer], direct, rtol=1e-5, atol=1e-6)


def test_cached_and_reused(vgg, paintings: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    first = style_target(paintings, vgg, LAYERS, 48, torch.device("cpu"), cache, Skipped())
    assert len(list((cache / "targets").glob("*.safetensors"))) == 1

    def no_reading(path: Path) -> None:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(targets_module, "open_image", no_reading)
    second = style_target(paintings, vgg, LAYERS, 48, torch.device("cpu"), cache, Skipped())
    assert second.key == first.key and second.paintings == 3
    for layer in LAYERS:
        assert torch.equal(second.grams[layer], first.grams[layer])


def test_key_depends_on_contents_layers_size_and_weights(paintings: list[Path]) -> None:
    key = target_key(paintings, LAYERS, 48, "w")
    assert key == target_key(list(reversed(paintings)), LAYERS, 48, "w")
    assert key != target_key(paintings, LAYERS, 64, "w")
    assert key != target_key(paintings, LAYERS[:1], 48, "w")
    assert key != target_key(paintings, LAYERS, 48, "other")
    painting("lagoon", size=80, seed=9).save(paintings[0])
    assert key != target_key(paintings, LAYERS, 48, "w")


def test_unchanged_paintings_are_not_read_again(paintings: list[Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from artstyle.training import targets

    first = target_key(paintings, LAYERS, 48, "w", digests=targets.FileDigests(tmp_path))
    assert (tmp_path / "digests.json").is_file()
    opened: list[str] = []
    real_open = open

    def spy(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    assert target_key(paintings, LAYERS, 48, "w", digests=targets.FileDigests(tmp_path)) == first
    assert not [f for f in opened if f.endswith(".png") or f.endswith(".jpg")]
    monkeypatch.undo()
    painting("lagoon", size=80, seed=9).save(paintings[0])  # new contents, size and time: hashed again
    changed = target_key(paintings, LAYERS, 48, "w", digests=targets.FileDigests(tmp_path))
    assert changed != first and changed == target_key(paintings, LAYERS, 48, "w")


def test_unreadable_paintings_are_skipped_and_counted(vgg, paintings: list[Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really")
    skipped = Skipped()
    target = style_target([*paintings, bad], vgg, LAYERS, 48, torch.device("cpu"), None, skipped)
    assert target.paintings == 3 and len(skipped) == 1
    with pytest.raises(DataError, match="none of the 1 paintings"):
        style_target([bad], vgg, LAYERS, 48, torch.device("cpu"), None, Skipped())


def test_prepare_painting_crops_panoramas() -> None:
    from PIL import Image

    assert prepare_painting(Image.new("RGB", (1000, 100)), 50).size == (100, 50)
    assert prepare_painting(Image.new("RGB", (300, 200)), 50).size == (75, 50)


def test_small_sets_average_random_crops_at_random_scales(vgg, paintings: list[Path]) -> None:  # type: ignore[no-untyped-def]
    import random

    from artstyle.training.targets import painting_views, views_per_painting

    assert views_per_painting(3, 6) == 2 and views_per_painting(100, 32) == 1 and views_per_painting(10, 32) == 4
    views = painting_views(open_image(paintings[0]), 48, 5, random.Random(0))
    assert len(views) == 5 and all(v.width == v.height <= 48 for v in views)
    assert len({v.tobytes() for v in views}) == 5  # five different crops

    target = style_target(paintings, vgg, LAYERS, 48, torch.device("cpu"), None, Skipped(), min_views=6, seed=4)
    assert target.key != style_target(paintings, vgg, LAYERS, 48, torch.device("cpu"), None, Skipped()).key
    crops = [v for p in paintings for v in painting_views(open_image(p), 48, 2, random.Random(f"4:{p.name}"))]
    for layer in LAYERS:
        direct = torch.stack([gram_matrix(vgg(to_tensor(v), [layer])[layer])[0] for v in crops]).mean(0)
        torch.testing.assert_close(target.grams[layer], direct, rtol=1e-5, atol=1e-6)


def test_pool_holds_feature_vectors_of_every_painting(vgg, paintings: list[Path]) -> None:  # type: ignore[no-untyped-def]
    target = style_target(paintings, vgg, LAYERS, 48, torch.device("cpu"), None, Skipped(), samples=90)
    for layer in LAYERS:
        pool = target.pools[layer]
        assert pool.shape == (90, target.grams[layer].shape[0])
        owners = []
        for p in paintings:
            feats = vgg(to_tensor(prepare_painting(open_image(p), 48)), [layer])[layer][0].flatten(1).T
            feats = feats.half().float()  # the pool keeps float16 values, as its cache does
            # each pool vector is one of this painting's feature vectors, or of another painting's
            found = torch.cdist(pool, feats, compute_mode="donot_use_mm_for_euclid_dist").min(1).values < 1e-3
            owners.append(found)
        owned = torch.stack(owners)
        assert owned.any(0).all()  # every vector comes from a painting
        assert (owned.sum(1) >= 25).all()  # and each painting gives its share (30 each)


def test_a_cached_target_equals_the_one_just_computed(vgg, paintings: list[Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fresh = style_target(paintings, vgg, LAYERS, 48, torch.device("cpu"), tmp_path, Skipped(), samples=64)
    cached = style_target(paintings, vgg, LAYERS, 48, torch.device("cpu"), tmp_path, Skipped(), samples=64)
    for layer in LAYERS:
        assert torch.equal(fresh.pools[layer], cached.pools[layer])
        assert torch.equal(fresh.grams[layer], cached.grams[layer])


def test_workers_decoding_the_paintings_give_the_same_target(vgg, paintings: list[Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really")
    here_skipped, there_skipped = Skipped(), Skipped()
    here = style_target([*paintings, bad], vgg, LAYERS, 48, torch.device("cpu"), None, here_skipped, min_views=5,
                        seed=3, samples=64)
    there = style_target([*paintings, bad], vgg, LAYERS, 48, torch.device("cpu"), None, there_skipped, min_views=5,
                         seed=3, samples=64, workers=2)
    for layer in LAYERS:
        assert torch.equal(here.grams[layer], there.grams[layer]) and torch.equal(here.pools[layer], there.pools[layer])
    assert here.paintings == there.paintings == 3 and len(here_skipped) == len(there_skipped) == 1


def test_views_through_the_loss_network_in_batches_give_the_same_target(vgg, paintings: list[Path]) -> None:  # type: ignore[no-untyped-def]
    """A painting's crops (one shape) and paintings of one size go through VGG-19 together; the Grams
    and the sampled features are those of one view at a time."""
    paintings = [*paintings, paintings[0]]  # two paintings of one size, as whole views
    for min_views in (8, 1):  # several crops of each painting, then whole paintings of several shapes
        one, batched = (style_target(paintings, vgg, LAYERS, 48, torch.device("cpu"), None, Skipped(),
                                     min_views=min_views, samples=256, batch=batch) for batch in (1, 3))
        assert one.paintings == batched.paintings == 4
        for layer in LAYERS:
            torch.testing.assert_close(batched.grams[layer], one.grams[layer], rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(batched.pools[layer], one.pools[layer], rtol=1e-3, atol=1e-3)


def _target(gram: list[list[float]], key: str) -> StyleTarget:
    return StyleTarget({"relu1_1": torch.tensor(gram)}, {"relu1_1": torch.ones(3, 2)}, paintings=5, key=key)


def test_contrast_pushes_the_target_away_from_the_others_mean() -> None:
    own = _target([[4.0, 2.0], [2.0, 1.0]], "own")
    others = [_target([[2.0, 2.0], [2.0, 3.0]], "b"), _target([[2.0, 4.0], [4.0, 1.0]], "c")]
    pushed = contrasted(own, others, 0.5)
    # their mean is [[2, 3], [3, 2]]: own + 0.5 * (own - mean)
    torch.testing.assert_close(pushed.grams["relu1_1"], torch.tensor([[5.0, 1.5], [1.5, 0.5]]))
    assert pushed.pools is own.pools and pushed.paintings == 5
    assert pushed.key != own.key and pushed.key != contrasted(own, others, 1.0).key
    assert contrasted(own, others[::-1], 0.5).key == pushed.key  # the order the movements come in does not matter


def test_a_contrasted_gram_has_no_negative_entries() -> None:
    own = _target([[4.0, 2.0], [2.0, 1.0]], "own")
    pushed = contrasted(own, [_target([[0.0, 9.0], [9.0, 0.0]], "far")], 1.0)
    torch.testing.assert_close(pushed.grams["relu1_1"], torch.tensor([[8.0, 0.0], [0.0, 2.0]]))


def test_contrast_with_nothing_to_push_from_says_so() -> None:
    with pytest.raises(UsageError, match="--contrast-with"):
        contrasted(_target([[1.0]], "own"), [], 1.0)
