"""Property-based tests of the HTTP API: requests generated from its OpenAPI schema (Schemathesis),
and generated uploads and option values (Hypothesis). Whatever a client sends, the answer is 200 or a
documented 4xx whose body is ``{"error": "..."}``, never a 5xx."""

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from artstyle.web.app import Limits, create_app

DOCUMENTED = {200, 400, 413, 415, 422}  # 503 needs concurrent requests; these tests send one at a time
FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def app(trained_run: Path) -> Any:
    """A small server: outputs at most 64 px, so painting a generated photo takes milliseconds."""
    return create_app([trained_run], limits=Limits(max_upload_bytes=200_000, max_pixels=500_000, max_output_side=64))


def assert_error_shape(status: int, content_type: str, body: Any) -> None:
    """A 4xx or 5xx carries ``{"error": "<one line>"}`` and nothing else."""
    assert content_type == "application/json", (status, content_type)
    assert isinstance(body, dict) and list(body) == ["error"], (status, body)
    assert isinstance(body["error"], str) and body["error"] and "\n" not in body["error"], (status, body)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_generated_requests_get_documented_answers(app: Any, mode: GenerationMode) -> None:
    """Every operation in the schema, with data that fits it (positive) or breaks it (negative).

    The schema is given to Hypothesis as a strategy, not through ``schema.parametrize()``: that
    needs a pytest-fixture loader whose reporting breaks on pytest 9 (``Function._nodeid`` is gone).
    """
    rejections = sorted(DOCUMENTED - {200})  # a max_size over the server's maximum is 413, not 422
    config = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": rejections}}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    if mode == GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)

    @given(case=schema.as_strategy(mode))
    @FUZZ
    def run(case: Any) -> None:
        response = case.call_and_validate(checks=checks)
        event(f"{case.method} {case.path} -> {response.status_code}")
        if response.status_code >= 400:
            assert_error_shape(response.status_code, response.headers.get("content-type", [""])[0], response.json())

    run()


def _encoded(size: tuple[int, int], fmt: str, seed: int) -> bytes:
    """A noise photo of ``size`` (width, height) px in ``fmt``, the same bytes for the same arguments."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format=fmt)
    return buffer.getvalue()


sizes = st.tuples(st.integers(1, 400), st.integers(1, 400))
images = st.builds(_encoded, sizes, st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"]), st.integers(0, 99))


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A real image cut short, or with a few bytes overwritten."""
    data = draw(images)
    if draw(st.booleans()):
        return data[: draw(st.integers(0, len(data) - 1))]
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        buffer[draw(st.integers(0, len(buffer) - 1))] = draw(st.integers(0, 255))
    return bytes(buffer)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels but holds almost none: small ones are
    truncated (422), large ones decompression bombs (413)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


declared = st.builds(_png_header, st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1))
uploads = st.one_of(st.binary(max_size=4096), images, damaged(), declared)
good_options = st.fixed_dictionaries({"movement": st.sampled_from(["ember", "lagoon"])}, optional={
    "strength": st.floats(0, 1).map(str),
    "preserve_color": st.sampled_from(["true", "false"]),
    "format": st.sampled_from(["png", "jpeg"]),
    "max_size": st.integers(16, 64).map(str),
})
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), st.integers(-5000, 5000).map(str),
                    st.text(max_size=12))
any_options = st.fixed_dictionaries({}, optional={
    "movement": st.one_of(st.sampled_from(["ember", "lagoon", "cubism", ""]), st.text(max_size=20)),
    "strength": numbers,
    "preserve_color": st.one_of(st.sampled_from(["true", "false", "1", "0", "on", "yes"]), st.text(max_size=8)),
    "format": st.one_of(st.sampled_from(["png", "jpeg", "gif", "PNG"]), st.text(max_size=8)),
    "max_size": numbers,
})


@pytest.fixture(scope="module")
def client(app: Any) -> TestClient:
    return TestClient(app)


def post(client: TestClient, upload: bytes, fields: dict[str, str], filename: str = "photo.jpg") -> int:
    """POST /api/stylize; checks the answer is an image as asked for or a JSON error, and returns its status."""
    response = client.post("/api/stylize", files={"image": (filename, upload, "application/octet-stream")},
                           data=fields)
    assert response.status_code in DOCUMENTED, (response.status_code, response.text[:200])
    if response.status_code == 200:
        assert response.headers["content-type"] == f"image/{fields.get('format') or 'png'}"  # empty: the default
        assert max(Image.open(io.BytesIO(response.content)).size) <= 64
        event("200: painted")
    else:
        assert_error_shape(response.status_code, response.headers["content-type"], response.json())
        event(f"{response.status_code}: {response.json()['error'][:40]}")
    return response.status_code


@given(upload=uploads, fields=good_options)
@settings(FUZZ, max_examples=150)
def test_generated_uploads_get_an_image_or_a_json_error(client: TestClient, upload: bytes,
                                                        fields: dict[str, str]) -> None:
    """Random bytes; real photos of random sizes and formats, whole, cut short or with bytes overwritten;
    headers declaring any size."""
    assert post(client, upload, fields) in {200, 413, 415, 422}


@given(fields=any_options, filename=st.sampled_from(["photo.jpg", "x.png", "", "a/b\\c.gif", "\u00e9t\u00e9.png"]))
@settings(FUZZ, max_examples=100)
def test_generated_option_values_get_an_image_or_a_json_error(client: TestClient, fields: dict[str, str],
                                                              filename: str) -> None:
    """Any text in any field, or none; a file part without a file name is not a file (422)."""
    assert post(client, _encoded((40, 30), "PNG", 0), fields, filename) in {200, 413, 422}
