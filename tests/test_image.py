import errno
import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artstyle.errors import ArtstyleError, ImageError, UsageError
from artstyle.image import (
    atomic_write,
    encode_image,
    image_grid,
    iter_inputs,
    list_images,
    open_image,
    psnr,
    resize_for_painting,
    resize_max,
    save_image,
    to_pil,
    to_tensor,
)


def _checker(size: tuple[int, int] = (40, 24)) -> Image.Image:
    """Left half red, right half blue: enough to tell rotations apart."""
    arr = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    arr[:, : size[0] // 2] = (255, 0, 0)
    arr[:, size[0] // 2:] = (0, 0, 255)
    return Image.fromarray(arr, "RGB")


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    _checker().save(path, exif=exif, quality=100)
    im = open_image(path)
    assert im.size == (24, 40)
    top, bottom = im.getpixel((12, 2)), im.getpixel((12, 37))
    assert top[0] > 200 and top[2] < 60  # red ends up on top
    assert bottom[2] > 200 and bottom[0] < 60


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "1", "LA"])
def test_other_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    path = tmp_path / f"im_{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
    _checker().convert(mode).save(path)
    im = open_image(path)
    assert im.mode == "RGB" and im.size == (40, 24)


def test_alpha_is_composited_over_white(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (20, 20), (255, 0, 0, 0)).save(path)
    assert open_image(path).getpixel((5, 5)) == (255, 255, 255)


def test_16_bit_grayscale_keeps_its_range(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    arr = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (20, 1))
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode.startswith("I")
    im = open_image(path)
    assert im.mode == "RGB"
    assert im.getpixel((0, 0))[0] == 0 and im.getpixel((31, 0))[0] == 255
    assert 100 < im.getpixel((16, 0))[0] < 155


def test_truncated_corrupt_and_non_images_raise_image_error(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    _checker((200, 200)).save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    for path, message in [(truncated, "unreadable"), (text, "not an image"), (tmp_path / "missing.jpg", "no such"),
                          (tmp_path, "folder")]:
        with pytest.raises(ImageError, match=message):
            open_image(path)


def test_huge_and_tiny_images_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(path)
    with pytest.raises(ImageError, match="pixel limit"):
        open_image(path, max_pixels=300 * 299)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (8, 30)).save(tiny)
    with pytest.raises(ImageError, match="too small"):
        open_image(tiny)


def test_tensor_round_trip() -> None:
    im = _checker()
    t = to_tensor(im)
    assert t.shape == (1, 3, 24, 40) and t.dtype == torch.float32
    assert 0.0 <= t.min() and t.max() <= 1.0
    assert np.array_equal(np.asarray(to_pil(t)), np.asarray(im))
    assert to_pil(torch.full((3, 2, 2), 2.0)).getpixel((0, 0)) == (255, 255, 255)  # clipped


def test_resize_max_keeps_aspect_and_never_enlarges() -> None:
    im = Image.new("RGB", (400, 100))
    assert resize_max(im, 200).size == (200, 50)
    assert resize_max(im, 1000).size == (400, 100)
    assert resize_max(im, None).size == (400, 100)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def explode(f: object) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(ArtstyleError, match="No space left.*free some space"):
        atomic_write(path, explode)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]  # no temporary file left behind
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
    assert (path.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_unwritable_outputs_give_one_line_and_leave_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ArtstyleError, match="a_file is a file, not a folder"):
        save_image(_checker(), blocker / "sub" / "out.png")

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(ArtstyleError, match=r"\(Read-only file system\); write elsewhere"):
        save_image(_checker(), tmp_path / "ro" / "out.png")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a_file", "ro"]


def test_written_files_get_the_mode_of_a_plain_new_file(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        save_image(_checker(), tmp_path / "out.png")
    finally:
        os.umask(old)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == 0o644


def test_images_too_thin_after_resizing_are_refused() -> None:
    sliver = Image.new("RGB", (3000, 17))
    assert resize_for_painting(sliver, None).size == (3000, 17)
    with pytest.raises(ImageError, match=r"3000x17 is too thin to paint: it would be 256x1 px"):
        resize_for_painting(sliver, 256)
    assert resize_for_painting(Image.new("RGB", (600, 40)), 256).size == (256, 17)


def test_float_image_with_nan_keeps_its_picture(tmp_path: Path) -> None:
    arr = np.tile(np.linspace(0.0, 100.0, 32, dtype=np.float32), (32, 1))
    arr[3, 3] = np.nan
    Image.fromarray(arr, "F").save(tmp_path / "f.tif")
    rgb = np.asarray(open_image(tmp_path / "f.tif"))
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255 and rgb[3, 3, 0] == 0
    assert len(np.unique(rgb[..., 0])) > 20  # a gradient, not flat grey


def test_pillow_bomb_warning_is_left_to_artstyle_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (40, 40)).save(tmp_path / "p.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # warns from 1000 px, refuses from 2000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_image(tmp_path / "p.png").size == (40, 40)
    Image.new("RGB", (50, 50)).save(tmp_path / "q.png")
    with pytest.raises(ImageError, match="decompression-bomb limit"):
        open_image(tmp_path / "q.png")


@pytest.mark.parametrize("kind,suffix", [("png", ".png"), ("jpeg", ".jpg")])
def test_encoded_bytes_are_what_save_image_writes(tmp_path: Path, kind: str, suffix: str) -> None:
    save_image(_checker(), tmp_path / f"out{suffix}")
    assert encode_image(_checker(), kind) == (tmp_path / f"out{suffix}").read_bytes()
    with pytest.raises(UsageError, match="unknown image format 'gif2'"):
        encode_image(_checker(), "gif2")


def test_save_image_refuses_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown image format"):
        save_image(_checker(), tmp_path / "out.xyz")
    save_image(_checker(), tmp_path / "out.jpg")
    assert Image.open(tmp_path / "out.jpg").format == "JPEG"


def test_listing_and_inputs(tmp_path: Path) -> None:
    _checker().save(tmp_path / "b.png")
    _checker().save(tmp_path / "a.JPG", format="JPEG")
    (tmp_path / "readme.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png"]
    assert len(iter_inputs([tmp_path, tmp_path / "b.png"])) == 3
    with pytest.raises(UsageError, match="no such file"):
        iter_inputs([tmp_path / "nope.png"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no images"):
        iter_inputs([empty])


def test_image_grid_layout() -> None:
    wide, tall = Image.new("RGB", (200, 100), "red"), Image.new("RGB", (50, 100), "blue")
    grid = image_grid([[wide, tall], [tall, wide]], labels=["one", "two"], cell=100, gap=4)
    assert grid.width == 3 * 4 + 100 + 100
    assert grid.height > 2 * 100 + 3 * 4  # the label strip adds height
    assert grid.getpixel((4 + 50, grid.height - 4 - 25)) == (0, 0, 255)  # second row, first column: tall, centred


def test_a_large_jpeg_painted_small_is_decoded_at_a_reduced_scale(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    gradient = Image.linear_gradient("L").resize((800, 600)).convert("RGB")
    gradient.save(path, quality=95)
    small = open_image(path, max_side=180)
    assert small.size == (200, 150)  # 1/4 scale: the smallest that still covers 180 px
    assert open_image(path, max_side=1000).size == (800, 600) == open_image(path).size
    reference = to_tensor(open_image(path).resize(small.size, Image.Resampling.BOX))
    assert psnr(to_tensor(small), reference) > 35


@pytest.fixture(params=["isal", "zlib"])
def deflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """PNGs deflated by ISA-L (artstyle[fast]) and by zlib (without it)."""
    import artstyle.image

    if request.param == "isal":
        pytest.importorskip("isal", reason="ISA-L deflates PNGs in artstyle[fast]")
    else:
        monkeypatch.setattr(artstyle.image, "isal_zlib", None)
    return str(request.param)


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (640, 480), (1024, 1024)])
def test_png_files_hold_exactly_the_picture(size: tuple[int, int], deflater: str) -> None:
    rng = np.random.default_rng(size[0])
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    pixels[: size[1] // 2] //= 3  # some smooth, some noisy rows: the Up filter wraps modulo 256
    data = encode_image(Image.fromarray(pixels), "png")
    with Image.open(io.BytesIO(data)) as back:
        back.load()
        assert back.format == "PNG" and back.mode == "RGB" and back.size == size
        assert np.array_equal(np.asarray(back), pixels)


def test_png_files_are_about_as_small_as_pillows(deflater: str) -> None:
    from artstyle.demo import sample_photo_path

    photo = resize_max(open_image(sample_photo_path()), 512)
    flat = Image.new("RGB", (1024, 768), (200, 30, 60))  # zlib's Huffman-only strategy made it 25 times larger
    for picture in (photo, flat):
        assert len(encode_image(picture, "png")) < 1.1 * len(_pillow_png(picture))  # Pillow at zlib level 1


def _pillow_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def test_a_thin_jpeg_is_refused_with_its_own_size_not_its_reduced_decode(tmp_path: Path) -> None:
    path = tmp_path / "thin.jpg"
    Image.new("RGB", (64, 2000), (90, 90, 90)).save(path)
    with pytest.raises(ImageError, match="64x2000 is too thin to paint"):
        resize_for_painting(open_image(path, max_side=200), 200)
