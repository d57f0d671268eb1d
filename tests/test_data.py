from pathlib import Path

import pytest
import torch
from PIL import Image

from artstyle.errors import DataError, UsageError
from artstyle.training.data import (
    PhotoCrops,
    PhotoStream,
    Skipped,
    list_photos,
    load_resized,
    movement_folders,
    sample_paths,
    scan_movements,
    select_movements,
    split_photos,
)


def _folder(root: Path, name: str, n: int) -> None:
    (root / name).mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (40, 30), (i * 20, 0, 0)).save(root / name / f"{i}.jpg")


def test_scan_and_select(tmp_path: Path) -> None:
    _folder(tmp_path, "baroque", 3)
    _folder(tmp_path, "cubism", 1)
    (tmp_path / "cubism" / "notes.txt").write_text("x")
    (tmp_path / "stray.jpg").write_bytes(b"")
    found = scan_movements(tmp_path)
    assert list(found) == ["baroque", "cubism"] and len(found["cubism"]) == 1
    assert list(select_movements(found, None, min_paintings=2)) == ["baroque"]
    assert list(select_movements(found, ["cubism"], min_paintings=2)) == ["cubism"]
    with pytest.raises(UsageError, match="unknown movement.*'cubsim'.*choose from: baroque, cubism"):
        select_movements(found, ["cubsim"], 1)
    with pytest.raises(DataError, match="lower --min-paintings"):
        select_movements(found, None, min_paintings=10)


def test_wikiart_folder_names_match_without_regard_to_case_or_separators(tmp_path: Path) -> None:
    for folder in ("Impressionism", "Northern_Renaissance", "Abstract_Expressionism", "Naive_Art_Primitivism"):
        _folder(tmp_path, folder, 2)
    found = scan_movements(tmp_path)
    wanted = ["impressionism", "northern-renaissance", "naive=naive art primitivism+ABSTRACT_EXPRESSIONISM"]
    chosen = select_movements(found, wanted, 1)
    assert list(chosen) == ["impressionism", "northern-renaissance", "naive"]
    assert {p.parent.name for p in chosen["naive"]} == {"Naive_Art_Primitivism", "Abstract_Expressionism"}
    assert movement_folders(tmp_path, wanted, list(chosen))["impressionism"] == [tmp_path / "Impressionism"]
    _folder(tmp_path, "impressionism", 2)  # two folders now match; the exact name wins
    assert {p.parent.name for p in select_movements(scan_movements(tmp_path), ["impressionism"], 1)[
        "impressionism"]} == {"impressionism"}
    with pytest.raises(UsageError, match="'IMPRESSIONISM' matches several folders"):
        select_movements(scan_movements(tmp_path), ["IMPRESSIONISM"], 1)


def test_photos_from_folders_lists_and_files(tmp_path: Path) -> None:
    for rel in ("a/1.jpg", "a/deep/er/2.png", "a/.hidden.jpg", "a/.cache/3.jpg", "a/notes.txt", "b/4.JPG", "c/5.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# some photos\nc/5.jpg\n\n  b/4.JPG  \n")
    photos = list_photos([tmp_path / "a", tmp_path / "list.txt", tmp_path / "c" / "5.jpg"])
    assert [p.relative_to(tmp_path).as_posix() for p in photos] == ["a/1.jpg", "a/deep/er/2.png", "b/4.JPG", "c/5.jpg"]
    with pytest.raises(UsageError, match="nowhere: no such folder or file"):
        list_photos([tmp_path / "nowhere"])


def test_scan_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such folder"):
        scan_movements(tmp_path / "nope")
    with pytest.raises(DataError, match="no movement sub-folders"):
        scan_movements(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        select_movements(scan_movements(tmp_path), ["empty"], 1)


def test_sample_paths_is_seeded_and_not_the_first_files() -> None:
    paths = [Path(f"{i:03d}.jpg") for i in range(100)]
    a, b = sample_paths(paths, 10, seed=1), sample_paths(paths, 10, seed=1)
    assert a == b and len(a) == 10 and a != paths[:10]
    assert sample_paths(paths, 10, seed=2) != a
    assert sample_paths(paths[:5], 10, seed=1) == paths[:5]


def test_split_photos_holds_out_previews() -> None:
    paths = [Path(f"{i}.jpg") for i in range(10)]
    train, preview = split_photos(paths, 3, seed=0)
    assert len(preview) == 3 and not set(train) & set(preview) and len(train) == 7
    assert split_photos([Path("a.jpg")], 3, seed=0) == ([Path("a.jpg")], [])


def test_load_resized_skips_unreadable(tmp_path: Path) -> None:
    Image.new("RGB", (100, 50)).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    skipped = Skipped()
    images = load_resized([tmp_path / "ok.png", tmp_path / "bad.png"], 32, skipped)
    assert [tuple(i.shape) for i in images] == [(3, 32, 64)] and images[0].dtype == torch.uint8
    assert len(skipped) == 1 and skipped.items[0][0].name == "bad.png"


def test_crops_are_reproducible_and_resumable() -> None:
    photos = [torch.randint(0, 255, (3, 40, 60), dtype=torch.uint8) for _ in range(3)]
    a = PhotoCrops(photos, 32, seed=5)
    first = a.batch(4)
    assert first.shape == (4, 3, 32, 32) and first.dtype == torch.float32 and first.max() <= 1
    state = a.generator.get_state()
    second = a.batch(4)
    b = PhotoCrops(photos, 32, seed=5)
    assert torch.equal(b.batch(4), first)
    b.generator.set_state(state)
    assert torch.equal(b.batch(4), second)
    with pytest.raises(DataError):
        PhotoCrops([], 32, seed=0)


def test_a_movement_can_join_several_folders(tmp_path: Path) -> None:
    from artstyle.training.data import parse_movement

    for folder, count in (("abstract", 2), ("fauvism", 3), ("baroque", 1)):
        (tmp_path / folder).mkdir()
        for i in range(count):
            (tmp_path / folder / f"{folder}{i}.jpg").write_bytes(b"x")
    found = scan_movements(tmp_path)
    wanted = ["modern_art=abstract+fauvism", "baroque"]
    chosen = select_movements(found, wanted, 1)
    assert list(chosen) == ["modern_art", "baroque"]
    assert [p.name for p in chosen["modern_art"]] == ["abstract0.jpg", "abstract1.jpg", "fauvism0.jpg",
                                                      "fauvism1.jpg", "fauvism2.jpg"]
    assert movement_folders(tmp_path, wanted, list(chosen)) == {
        "modern_art": [tmp_path / "abstract", tmp_path / "fauvism"], "baroque": [tmp_path / "baroque"]}
    assert parse_movement(" x = a + b ") == ("x", ("a", "b"))
    with pytest.raises(UsageError, match="unknown movement.*'cubsim'"):
        select_movements(found, ["m=abstract+cubsim"], 1)
    for bad in ("=abstract", "m=", "m=a++b"):
        with pytest.raises(UsageError, match="NAME=FOLDER"):
            parse_movement(bad)


def test_multi_scale_crops_cover_more_of_the_picture_and_stay_resumable() -> None:
    photo = torch.arange(64 * 64, dtype=torch.float32).reshape(1, 64, 64).expand(3, 64, 64)
    photo = (photo / photo.max() * 255).round().to(torch.uint8)
    plain = PhotoCrops([photo], 16, seed=0).batch(8)
    scaled = PhotoCrops([photo], 16, seed=0, max_scale=3.0)
    batch = scaled.batch(8)
    assert batch.shape == plain.shape == (8, 3, 16, 16)
    # a crop of up to 48 px squeezed into 16 spans more of the gradient than a 16 px crop
    span = (batch.amax((1, 2, 3)) - batch.amin((1, 2, 3))).mean()
    assert span > 1.3 * (plain.amax((1, 2, 3)) - plain.amin((1, 2, 3))).mean()
    state = scaled.generator.get_state()
    again = scaled.batch(4)
    scaled.generator.set_state(state)
    assert torch.equal(scaled.batch(4), again)


def _photo_files(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):  # each photo one flat colour, its index in the red channel: a crop says where it came from
        Image.new("RGB", (40 + i, 30), (i * 8, 100, 50)).save(folder / f"p{i:02d}.png")
        paths.append(folder / f"p{i:02d}.png")
    return paths


def _sources(batch: torch.Tensor) -> set[int]:
    return {round(float(x) * 255 / 8) for x in batch[:, 0, 0, 0]}


@pytest.mark.parametrize("workers", [0, 2])
def test_photo_stream_is_a_function_of_the_step(tmp_path: Path, workers: int) -> None:
    paths = _photo_files(tmp_path, 12)
    straight = PhotoStream(paths, 16, batch_size=3, seed=5, skipped=Skipped(), workers=workers)
    straight.start(0, 6)
    batches = [straight.batch(3) for _ in range(6)]
    straight.close()
    assert batches[0].shape == (3, 3, 16, 16) and batches[0].dtype == torch.float32
    assert not torch.equal(batches[0], batches[1])
    resumed = PhotoStream(paths, 16, batch_size=3, seed=5, skipped=Skipped(), workers=0)
    resumed.start(4, 6)  # a run resumed after step 4 draws what the uninterrupted one drew
    assert torch.equal(resumed.batch(3), batches[4]) and torch.equal(resumed.batch(3), batches[5])
    other_seed = PhotoStream(paths, 16, batch_size=3, seed=6, skipped=Skipped())
    assert not torch.equal(other_seed.batch(3), batches[0])


def test_photo_stream_shards_are_disjoint(tmp_path: Path) -> None:
    paths = _photo_files(tmp_path, 12)
    drawn = []
    for rank in range(3):
        stream = PhotoStream(paths, 16, batch_size=4, seed=0, skipped=Skipped(), rank=rank, world=3)
        stream.start(0, 20)
        drawn.append(set().union(*(_sources(stream.batch(4)) for _ in range(20))))
    assert drawn[0] | drawn[1] | drawn[2] == set(range(12))
    assert not (drawn[0] & drawn[1] or drawn[0] & drawn[2] or drawn[1] & drawn[2])
    with pytest.raises(DataError, match="no photos for process 3 of 4"):
        PhotoStream(paths[:3], 16, batch_size=1, seed=0, skipped=Skipped(), rank=3, world=4)


def test_photo_stream_skips_unreadable_photos_in_its_workers(tmp_path: Path) -> None:
    paths = _photo_files(tmp_path, 3)
    broken = tmp_path / "zz_broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    skipped = Skipped()
    stream = PhotoStream([*paths, broken], 16, batch_size=4, seed=0, skipped=skipped, workers=1)
    stream.start(0, 10)
    for _ in range(10):
        assert _sources(stream.batch(4)) <= {0, 1, 2}
    stream.close()
    assert [p for p, _ in skipped.items] == [broken]  # recorded once, however often it was drawn
    hopeless = PhotoStream([broken], 16, batch_size=1, seed=0, skipped=Skipped())
    with pytest.raises(DataError, match="photos in a row could not be read"):
        hopeless.batch(1)
