"""The HTTP API (FastAPI's TestClient) and the page in a real headless Chromium."""

import io
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

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


@pytest.mark.parametrize("upload,data,status,message", [
    (b"hello, not an image", {"movement": "ember"}, 415, "not an image"),
    (_png()[:60], {"movement": "ember"}, 422, "unreadable"),
    (b"x" * 250_000, {"movement": "ember"}, 413, "upload too large"),
    (_png((1000, 600)), {"movement": "ember"}, 413, "megapixel limit"),
    (_png(), {"movement": "cubism"}, 422, "unknown movement 'cubism'"),
    (_png(), {"movement": "ember", "max_size": "4000"}, 413, "over this server's limit"),
])
def test_bad_requests_get_json_errors(client: TestClient, upload: bytes, data: dict[str, str], status: int,
                                      message: str) -> None:
    response = client.post("/api/stylize", files={"image": ("x.png", upload, "image/png")}, data=data)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_validation_errors_are_json_not_500(client: TestClient) -> None:
    response = client.post("/api/stylize", files={"image": ("p.png", _png(), "image/png")},
                           data={"movement": "ember", "strength": "7"})
    assert response.status_code == 422 and "detail" in response.json()


def test_full_queue_answers_503(trained_run: Path) -> None:
    app = create_app([trained_run / "ember"], limits=Limits(queue=0))
    response = TestClient(app).post("/api/stylize", files={"image": ("p.png", _png(), "image/png")},
                                    data={"movement": "ember"})
    assert response.status_code == 503 and "busy" in response.json()["error"]


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
