"""The HTTP API (FastAPI's TestClient) and the page in a real headless Chromium."""

import asyncio
import contextlib
import gc
import io
import json
import re
import shutil
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from artstyle.image import open_image
from artstyle.web.app import Limits, create_app


def _png(size: tuple[int, int] = (80, 60), colour: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(trained_run: Path) -> TestClient:
    app = create_app([trained_run], limits=Limits(max_upload_bytes=200_000, max_pixels=500_000,
                                                  max_output_side=128))
    return TestClient(app)


def test_health_movements_and_schema(client: TestClient) -> None:
    assert client.get("/api/health").json()["status"] == "ok"
    movements = client.get("/api/movements").json()
    assert [m["id"] for m in movements] == ["ember", "lagoon"]
    assert movements[0]["paintings"] == {"ember": 4} and movements[0]["strength"] is True
    thumb = client.get(movements[0]["thumbnail"])
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).format == "JPEG"
    schema = client.get("/openapi.json").json()
    assert {"/api/movements", "/api/stylize", "/api/health"} <= set(schema["paths"])
    page = client.get("/")
    assert page.status_code == 200 and 'id="movements"' in page.text


def test_stylize_returns_the_image(client: TestClient) -> None:
    response = client.post("/api/stylize", files={"image": ("p.png", _png(), "image/png")},
                           data={"movement": "ember", "format": "jpeg"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size == (80, 60)
    zero = client.post("/api/stylize", files={"image": ("p.png", _png(), "image/png")},
                       data={"movement": "lagoon", "strength": "0"})
    assert Image.open(io.BytesIO(zero.content)).getpixel((5, 5)) == (40, 120, 200)
    big = client.post("/api/stylize", files={"image": ("p.png", _png((400, 300)), "image/png")},
                      data={"movement": "lagoon", "max_size": "100", "preserve_color": "true"})
    assert Image.open(io.BytesIO(big.content)).size == (100, 75)
    capped = client.post("/api/stylize", files={"image": ("p.png", _png((400, 300)), "image/png")},
                         data={"movement": "lagoon"})
    assert Image.open(io.BytesIO(capped.content)).size == (128, 96)  # the server's output limit


def _bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels, with almost no data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


@pytest.mark.parametrize("upload,data,status,message", [
    (b"hello, not an image", {"movement": "ember"}, 415, "not an image"),
    (_png()[:60], {"movement": "ember"}, 422, "unreadable"),
    (b"x" * 250_000, {"movement": "ember"}, 413, "upload too large"),
    (_png((1000, 600)), {"movement": "ember"}, 413, "megapixel limit"),
    (_bomb_png(), {"movement": "ember"}, 413, "megapixel limit"),
    (_png((20000, 16)), {"movement": "ember"}, 422, "too thin to paint"),
    (_png(), {"movement": "cubism"}, 422, "unknown movement 'cubism'"),
    (_png(), {"movement": "ember", "max_size": "4000"}, 413, "over this server's limit"),
    (_png(), {"movement": "ember", "strength": "2"}, 422, "strength: input should be less than or equal to 1"),
    (_png(), {"movement": "ember", "strength": "nan"}, 422, "strength: input should be a finite number"),
    (_png(), {"movement": "ember", "max_size": "-1"}, 422, "max_size: input should be greater than or equal to 16"),
    (_png(), {"movement": "ember", "format": "gif"}, 422, "format: input should be 'png' or 'jpeg'"),
    (_png(), {}, 422, "movement: field required"),
])
def test_bad_requests_get_json_errors(client: TestClient, upload: bytes, data: dict[str, str], status: int,
                                      message: str) -> None:
    response = client.post("/api/stylize", files={"image": ("x.png", upload, "image/png")}, data=data)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert list(response.json()) == ["error"] and message in response.json()["error"]
    assert "\n" not in response.json()["error"]


def test_a_request_without_the_photo_names_the_missing_field(client: TestClient) -> None:
    response = client.post("/api/stylize", data={"movement": "ember"})
    assert response.status_code == 422 and response.json() == {"error": "image: field required"}


def test_unknown_pages_and_wrong_methods_get_json_errors(client: TestClient) -> None:
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404 and "/api/nothing-here" in missing.json()["error"]
    wrong = client.get("/api/stylize")
    assert wrong.status_code == 405 and wrong.json() == {"error": "GET is not allowed on /api/stylize; use POST"}
    assert wrong.headers["allow"] == "POST"
    assert client.delete("/api/health").status_code == 405
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN: it is off


def test_an_oversized_text_field_gets_a_json_error(trained_run: Path) -> None:
    """Starlette refuses a text field over 1 MB; with the default 20 MB upload limit that is the limit hit."""
    client = TestClient(create_app([trained_run / "ember"]))
    response = client.post("/api/stylize", files={"image": ("p.png", _png(), "image/png")},
                           data={"movement": "e" * 1_100_000})
    assert response.status_code in (400, 413)
    assert "maximum size" in response.json()["error"]


def _multipart_head(boundary: str) -> bytes:
    return (f'--{boundary}\r\nContent-Disposition: form-data; name="movement"\r\n\r\nember\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="huge.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode()


def _post_in_chunks(app: Any, chunks: Iterator[bytes], headers: dict[str, str]) -> tuple[int, bytes, int]:
    """POST /api/stylize straight to the ASGI app, feeding the body chunk by chunk as a server would:
    (status, response body, bytes the app pulled from the body)."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/stylize", "raw_path": b"/api/stylize", "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    asyncio.run(app(scope, receive, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, "exactly one response"
    return starts[0]["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"), pulled


def test_a_body_over_the_limit_is_refused_while_it_streams(client: TestClient) -> None:
    """A chunked 50 MB upload: 413 once the bytes pass the limit, without reading (or spooling) the rest."""
    boundary = "fuzzboundary"
    chunk = b"\0" * 65536
    chunks = iter([_multipart_head(boundary), *[chunk] * 800])  # 50 MB after the head
    status, body, pulled = _post_in_chunks(
        client.app, chunks, {"content-type": f"multipart/form-data; boundary={boundary}",
                             "transfer-encoding": "chunked"})
    assert status == 413 and "upload too large" in json.loads(body)["error"]
    assert pulled < 200_000 + 64 * 1024 + 2 * len(chunk)  # the limit, the form allowance, the chunk that crossed it
    assert next(chunks, None) is not None, "the rest of the body was left unread"


def test_a_declared_length_over_the_limit_is_refused_before_reading(client: TestClient) -> None:
    status, body, pulled = _post_in_chunks(
        client.app, iter([b"\0" * 65536] * 10), {"content-type": "multipart/form-data; boundary=x",
                                                  "content-length": str(2**30)})
    assert (status, pulled) == (413, 0) and "upload too large" in json.loads(body)["error"]


def test_full_queue_answers_503_with_retry_after_before_reading_the_upload(trained_run: Path) -> None:
    app = create_app([trained_run / "ember"], limits=Limits(queue=0))
    response = TestClient(app).post("/api/stylize", files={"image": ("p.png", _png(), "image/png")},
                                    data={"movement": "ember"})
    assert response.status_code == 503 and "busy" in response.json()["error"]
    assert int(response.headers["retry-after"]) >= 1
    status, body, pulled = _post_in_chunks(app, iter([_multipart_head("b"), _png()]),
                                           {"content-type": "multipart/form-data; boundary=b"})
    assert (status, pulled) == (503, 0) and "busy" in json.loads(body)["error"]
    assert TestClient(app).get("/api/health").json()["waiting"] == 0


def test_docs_load_swagger_ui_from_the_server_itself(client: TestClient) -> None:
    """/docs works offline: every script, style sheet and icon it names is served by the app."""
    docs = client.get("/docs")
    assert docs.status_code == 200 and "SwaggerUIBundle" in docs.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', docs.text) + re.findall(r"url: '([^']+)'", docs.text)
    assert len(urls) >= 4 and "http" not in docs.text.replace("http-equiv", "")
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        response = client.get(url)
        assert response.status_code == 200 and len(response.content) > 100, url
    assert client.get("/static/swagger-ui/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")


@contextlib.contextmanager
def _finally(action: Callable[[], object]) -> Iterator[None]:
    try:
        yield
    finally:
        action()


def test_health_answers_while_a_large_photo_is_decoded(trained_run: Path) -> None:
    """Decoding and painting run in worker threads: the event loop keeps answering /api/health."""
    buffer = io.BytesIO()
    Image.effect_noise((6000, 4000), 60).convert("RGB").save(buffer, format="JPEG", quality=90)
    began = time.perf_counter()
    open_image(io.BytesIO(buffer.getvalue()))
    decoding = time.perf_counter() - began  # what a ping would wait, were the photo decoded on the event loop
    app = create_app([trained_run / "ember"], limits=Limits(max_upload_bytes=64 * 2**20, max_output_side=64))
    pings: list[float] = []
    gc.collect()
    gc.disable()  # a full collection late in the suite stops every thread for a while: not what is measured here
    with TestClient(app) as client, _finally(gc.enable):
        done = threading.Event()

        def ping() -> None:
            while not done.is_set():
                began = time.perf_counter()
                assert client.get("/api/health").status_code == 200
                pings.append(time.perf_counter() - began)
                time.sleep(0.01)

        pinger = threading.Thread(target=ping)
        began = time.perf_counter()
        pinger.start()
        response = client.post("/api/stylize", files={"image": ("big.jpg", buffer.getvalue(), "image/jpeg")},
                               data={"movement": "ember"})
        busy = time.perf_counter() - began
        done.set()
        pinger.join()
    assert response.status_code == 200
    assert len(pings) >= 3 and max(pings) < max(0.1, decoding / 2), (decoding, busy, sorted(pings)[-3:])


def test_refused_before_any_byte_of_the_body_over_a_real_socket(trained_run: Path) -> None:
    """What curl does for a large file: declare it and wait for 100 Continue; the server answers 413 at once."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app([trained_run / "ember"]), host="127.0.0.1", port=port,
                                          log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.time() + 20
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"POST /api/stylize HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                         b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 1073741824\r\n\r\n")
            reply = b""
            while b"}" not in reply:
                data = conn.recv(65536)
                if not data:
                    break
                reply += data
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413") and b"100 Continue" not in reply
        assert json.loads(body) == {"error": "upload too large: at most 20 MB"}
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.browser
def test_page_in_headless_chromium(trained_run: Path, tmp_path: Path) -> None:
    """A person's path: open the page, pick a photo, click a movement, see the result."""
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "install Debian's chromium and chromium-driver (see .ci/run)"
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app([trained_run]), host="127.0.0.1", port=port,
                                          log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    photo = tmp_path / "photo.png"
    Image.new("RGB", (120, 90), (200, 90, 40)).save(photo)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        deadline = time.time() + 20
        while not server.started and time.time() < deadline:
            time.sleep(0.1)
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, 60)
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '.movement[data-id="lagoon"]')))
        browser.find_element(By.ID, "file").send_keys(str(photo))
        browser.find_element(By.CSS_SELECTOR, '.movement[data-id="lagoon"]').click()
        wait.until(lambda b: b.execute_script(
            "const r = document.getElementById('result'); return r.src.startsWith('blob:') && r.naturalWidth > 0"))
        assert browser.find_element(By.ID, "result-label").text == "lagoon"
        assert browser.execute_script("return document.getElementById('result').naturalWidth") == 120
        browser.save_screenshot(str(tmp_path / "page.png"))
    finally:
        browser.quit()
        server.should_exit = True
        thread.join(timeout=10)
