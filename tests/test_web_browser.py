"""nst-web in a real browser: headless Chromium (Debian's chromium and chromium-driver; scripts/setup.sh installs
them) driven by Selenium. Open the page, upload the demo's two images, start, watch the preview change, stop,
download the PNG and the log, and check them. A screenshot of the page mid-run is saved.

NST_WEB_SIZE (default 64), NST_WEB_SCREENSHOT (default: in the test's temporary folder) and NST_WEB_SHOT_DELAY
(seconds after the second change, default 1) make the README's picture (docs/make_pictures.sh)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("starlette", reason="nst-web needs the web extra: pip install 'nst[web]'")
pytest.importorskip("selenium", reason="the browser test needs selenium (the test extra)")
pytest.importorskip("skimage", reason="the demo's content photo comes from scikit-image (the test extra)")

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM, DRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
SIZE = int(os.environ.get("NST_WEB_SIZE", "64"))


@pytest.fixture
def browser(tmp_path):
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("Chromium or chromedriver is not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture
def server(model_dir, tmp_path):
    from nst.engine import load_model
    from nst.web.app import create_app
    from nst.web.server import serve_in_thread

    app = create_app(load_model(model_dir, "cpu"), tmp_path / "work", preview_every=2)
    server, thread, url = serve_in_thread(app)
    yield url
    server.stop()
    thread.join(30)


@pytest.fixture
def demo_files(tmp_path):
    from nst.web.examples import demo_content, demo_style

    content, style = tmp_path / "cat.png", tmp_path / "swirl.png"
    Image.fromarray(demo_content()).save(content)
    Image.fromarray(demo_style()).save(style)
    return content, style


def wait(driver, condition, timeout=120):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition())


def downloaded(folder: Path, suffix: str) -> Path:
    files = [p for p in folder.iterdir() if p.suffix == suffix]  # .crdownload while still arriving
    return files[0] if files else None  # type: ignore[return-value]


def test_page_runs_previews_stops_and_downloads(browser, server, demo_files, tmp_path):
    browser.get(server)
    wait(browser, lambda: browser.find_elements(By.NAME, "size"))
    browser.find_element(By.ID, "content-file").send_keys(str(demo_files[0]))
    browser.find_element(By.ID, "style-file").send_keys(str(demo_files[1]))
    for name, value in (("size", SIZE), ("iterations", 1000)):
        field = browser.find_element(By.NAME, name)
        field.clear()
        field.send_keys(str(value))
    assert browser.find_element(By.NAME, "style_weight").get_attribute("value")  # the slider's weight, sent as is
    browser.find_element(By.ID, "start").click()

    preview = browser.find_element(By.ID, "preview")
    seen: list[str] = []

    def changed_twice() -> bool:
        src = preview.get_attribute("src") or ""
        if src.startswith("data:image/jpeg") and (not seen or seen[-1] != src):
            seen.append(src)
        return len(seen) >= 3  # the first frame, then two changes

    wait(browser, changed_twice)
    time.sleep(float(os.environ.get("NST_WEB_SHOT_DELAY", "1")))  # more iterations on the plot
    status = browser.find_element(By.ID, "status").text
    assert "stage 1/1" in status and "J " in status and "style" in status
    assert browser.find_elements(By.CSS_SELECTOR, "#plot polyline")
    shot = Path(os.environ.get("NST_WEB_SCREENSHOT") or tmp_path / "web.png")
    browser.save_screenshot(str(shot))
    assert Image.open(shot).size[0] > 0

    browser.find_element(By.ID, "stop").click()
    link = browser.find_element(By.ID, "download-png")
    wait(browser, lambda: link.is_displayed())
    assert "stopped" in browser.find_element(By.ID, "status").text
    link.click()
    png = wait(browser, lambda: downloaded(browser.downloads, ".png"))
    image = Image.open(png)
    assert image.format == "PNG" and max(image.size) == SIZE
    assert png.name == "cat-stylized.png"
    browser.find_element(By.ID, "download-log").click()
    log = json.loads(wait(browser, lambda: downloaded(browser.downloads, ".json")).read_text())
    assert log["options"]["content"] == "cat.png" and 0 < log["iterations"] < 1000
    runs = browser.find_elements(By.CSS_SELECTOR, "#runs .run")
    assert len(runs) == 1 and "stopped" in runs[0].text
    wait(browser, lambda: runs[0].find_element(By.TAG_NAME, "img").get_attribute("naturalWidth") not in ("0", None))


def test_page_uploads_a_mask_per_style(browser, server, demo_files, tmp_path):
    """A mask chosen under the style's thumbnail shows its own thumbnail, travels with the run, and the log has it."""
    import urllib.request

    import numpy as np

    h, w = np.asarray(Image.open(demo_files[0])).shape[:2]
    mask = np.zeros((h, w), np.uint8)
    mask[:, : w // 2] = 255
    left = tmp_path / "left.png"
    Image.fromarray(mask).save(left)
    browser.get(server)
    wait(browser, lambda: browser.find_elements(By.NAME, "size"))
    browser.find_element(By.ID, "content-file").send_keys(str(demo_files[0]))
    browser.find_element(By.ID, "style-file").send_keys(str(demo_files[1]))
    browser.find_element(By.ID, "mask-0").send_keys(str(left))
    shown = wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#style-list label.mask img"))
    assert len(shown) == 1 and "left.png" in browser.find_element(By.ID, "style-list").text
    for name, value in (("size", 64), ("iterations", 2)):
        field = browser.find_element(By.NAME, name)
        field.clear()
        field.send_keys(str(value))
    browser.find_element(By.ID, "start").click()
    link = browser.find_element(By.ID, "download-log")
    wait(browser, lambda: link.is_displayed())
    with urllib.request.urlopen(link.get_attribute("href")) as response:
        log = json.loads(response.read())
    assert log["options"]["style_masks"] == ["left.png"] and log["options"]["style_source_masks"] is None
    assert [r["mask"] for r in log["resolved"]["regions"]["styles"]] == ["left.png"]
