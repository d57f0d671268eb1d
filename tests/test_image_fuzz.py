"""Property-based fuzzing of the image decoder and of option values (Hypothesis).

Whatever bytes come in, :func:`artstyle.image.open_image` returns an upright 8-bit RGB image of at
least ``MIN_SIDE`` px or raises ``ImageError``; whatever option values a user types, a command ends
with exit code 0, 1 or 2 and one line, never an internal error.
"""

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from artstyle.cli import main
from artstyle.errors import ImageError
from artstyle.image import MIN_SIDE, open_image

MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F")
FORMATS = {"PNG": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"), "JPEG": ("L", "RGB", "CMYK"),
           "TIFF": ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"), "WEBP": ("RGB", "RGBA"),
           "BMP": ("1", "L", "P", "RGB"), "GIF": ("L", "P")}
FUZZ = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def encoded_images(draw: st.DrawFn) -> tuple[bytes, tuple[int, int], int]:
    """(file bytes, (width, height), EXIF orientation or 0) of a random picture in a random format."""
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(FORMATS[fmt]))
    width, height = draw(st.integers(1, 80)), draw(st.integers(1, 80))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGBA").convert("RGB" if mode in ("CMYK", "I;16", "I", "F") else mode)
    if mode in ("I;16", "I", "F"):
        values = rng.random((height, width)) * draw(st.sampled_from([1.0, 255.0, 65535.0]))
        if mode == "F" and draw(st.booleans()):
            values[rng.integers(height), rng.integers(width)] = draw(st.sampled_from([np.nan, np.inf]))
        image = Image.fromarray(values.astype(np.float32), "F") if mode == "F" else \
            Image.fromarray(values.astype(np.uint16 if mode == "I;16" else np.int32))
    elif mode == "CMYK":
        image = image.convert("CMYK")
    orientation = draw(st.sampled_from([0, 1, 3, 6, 8])) if fmt in ("JPEG", "PNG", "TIFF", "WEBP") else 0
    buffer = io.BytesIO()
    extra = {}
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        extra["exif"] = exif.tobytes()
    image.save(buffer, format=fmt, **extra)
    return buffer.getvalue(), (width, height), orientation


def _check(decoded: Image.Image) -> None:
    assert decoded.mode == "RGB" and min(decoded.size) >= MIN_SIDE
    assert np.asarray(decoded).dtype == np.uint8


@FUZZ
@given(encoded_images())
def test_any_image_decodes_upright_or_is_refused(sample: tuple[bytes, tuple[int, int], int]) -> None:
    data, (width, height), orientation = sample
    try:
        decoded = open_image(io.BytesIO(data))
    except ImageError:
        assert min(width, height) < MIN_SIDE  # a well-formed picture is refused only for its size
        return
    _check(decoded)
    expected = (height, width) if orientation in (6, 8) else (width, height)
    assert decoded.size == expected


@FUZZ
@given(encoded_images(), st.data())
def test_damaged_files_decode_or_raise_image_error(sample: tuple[bytes, tuple[int, int], int],
                                                   data: st.DataObject) -> None:
    raw = bytearray(sample[0])
    damage = data.draw(st.sampled_from(["truncate", "flip", "both"]))
    if damage in ("truncate", "both"):
        raw = raw[: data.draw(st.integers(0, max(0, len(raw) - 1)))]
    if damage in ("flip", "both") and raw:
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        decoded = open_image(io.BytesIO(bytes(raw)))
    except ImageError:
        return
    _check(decoded)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_raise_image_error(raw: bytes) -> None:
    try:
        decoded = open_image(io.BytesIO(raw))
    except ImageError:
        return
    _check(decoded)


NUMBERS = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
                    st.sampled_from(["", "abc", "1e400", "-0", "0x10", "nan", " 3 "]))


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "photo.png"
    Image.new("RGB", (90, 40), (200, 100, 30)).save(path)
    return path


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=NUMBERS, tile=NUMBERS, strength=NUMBERS)
def test_stylize_option_values_never_crash(size: str, tile: str, strength: str, photo: Path, trained_run: Path,
                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["stylize", str(photo), "--model", str(trained_run / "ember"), "-o", str(tmp_path / "o.png"),
            "--overwrite", "--engine", "torch", "--size", size, "--tile", tile, "--strength", strength, "-q"]
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse refusing a value
        code = exit_info.code
    err = capsys.readouterr().err
    assert code in (0, 1, 2), err
    assert "internal error" not in err and "Traceback" not in err
    if code == 1:
        assert err.startswith("artstyle: ") and err.count("\n") <= 2, err
