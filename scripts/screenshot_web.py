"""Take docs/web.png: the web page with the shipped models, a photo dropped in and stylized.

Needs the [web,test] extras and Debian's chromium + chromium-driver. Usage:
    python scripts/screenshot_web.py PHOTO MOVEMENT docs/web.png
"""

import shutil
import sys
import tempfile
import threading
import time

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from artstyle.web.app import create_app


def main(photo: str, movement: str, output: str) -> None:
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=8765, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.1)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--no-first-run",
                     f"--user-data-dir={profile}", "--window-size=1400,1120", "--hide-scrollbars"):
            options.add_argument(flag)
        browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            browser.get("http://127.0.0.1:8765/")
            wait = WebDriverWait(browser, 120)
            wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f'.movement[data-id="{movement}"]'))
            browser.find_element(By.ID, "file").send_keys(photo)
            browser.find_element(By.CSS_SELECTOR, f'.movement[data-id="{movement}"]').click()
            wait.until(lambda b: b.execute_script(
                "const r = document.getElementById('result'); return r.src.startsWith('blob:') && r.naturalWidth > 0"))
            time.sleep(0.5)
            browser.save_screenshot(output)
        finally:
            browser.quit()
            server.should_exit = True


if __name__ == "__main__":
    main(*sys.argv[1:4])
