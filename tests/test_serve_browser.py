"""geocli serve and the HTML map in a real browser: headless Chromium driven by Selenium.

Skipped where no Chromium + chromedriver can be found (.ci/run installs Debian's packages).
Nothing here reaches the network: the page, its scripts and the borders all come from geocli.
"""
from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from serve_helpers import gps_jpeg
from ports import free_port

webdriver = pytest.importorskip("selenium.webdriver")


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if os.path.isfile(name) else None)
        if found:
            return found
    return None


CHROMIUM = _find("chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium")
DRIVER = _find("chromedriver", "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromedriver")


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--proxy-server=127.0.0.1:9"):
        options.add_argument(arg)  # a proxy that goes nowhere: any request off this machine fails (loopback bypasses it)
    options.binary_location = CHROMIUM
    try:
        driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    except Exception as exc:  # a browser that cannot start here (no display libraries, sandbox)
        pytest.skip(f"chromium does not start: {str(exc).splitlines()[0][:200]}")
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from geocli import load_model
    from geocli.serve.app import ServeSettings, create_app

    app = create_app(load_model("evidence", no_ocr=True), ServeSettings("evidence"))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def _wait(driver, script: str, timeout: float = 60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def test_page_shows_a_photo_its_marker_and_its_evidence(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    photo = gps_jpeg(tmp_path / "zagreb.jpg")
    browser.get(server + "/")
    _wait(browser, "return document.body.dataset.ready === 'true'")
    browser.find_element(By.ID, "picker").send_keys(photo)
    _wait(browser, "return document.querySelector('.card[data-state=done]')")
    card = browser.find_element(By.CSS_SELECTOR, ".card[data-state=done]")
    assert card.get_attribute("data-image") == "zagreb.jpg"
    markers = card.find_elements(By.CSS_SELECTOR, ".geomap-marker")
    assert len(markers) == 1 and markers[0].get_attribute("data-rank") == "1"
    assert len(card.find_elements(By.CSS_SELECTOR, ".geomap-country")) > 150  # borders drawn offline
    assert "45.80000, 15.98000" in card.find_element(By.CSS_SELECTOR, ".exif").text
    assert "Nokia N95 8GB" in card.find_element(By.CSS_SELECTOR, ".exif").text
    assert "Croatia" in card.find_element(By.CSS_SELECTOR, ".guesses").text
    assert "exif" in card.find_element(By.CSS_SELECTOR, ".guesses").text
    assert card.find_element(By.CSS_SELECTOR, ".evidence").text.strip()
    assert browser.execute_script("return document.querySelector('.photo img').naturalWidth") == 320
    browser.save_screenshot(str(tmp_path / "serve.png"))


def test_page_shows_a_bad_upload_as_an_error(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    browser.get(server + "/")
    _wait(browser, "return document.body.dataset.ready === 'true'")
    browser.find_element(By.ID, "picker").send_keys(str(bad))
    _wait(browser, "return document.querySelector('.card[data-state=failed]')")
    card = browser.find_element(By.CSS_SELECTOR, ".card[data-state=failed]")
    assert "not a recognised image format" in card.find_element(By.CSS_SELECTOR, ".state").text
    assert browser.execute_script("return fetch('/api/models').then(r => r.status)") == 200  # still serving


def test_html_map_draws_borders_and_markers_offline(browser, tmp_path):
    from geocli.report.maps import write_map

    records = [{"image": "a.jpg", "ok": True, "predictions": [
        {"rank": 1, "lat": 45.8, "lon": 16.0, "country_name": "Croatia", "probability": 0.6},
        {"rank": 2, "lat": 43.5, "lon": 16.4, "country_name": "Croatia", "probability": 0.2}]}]
    write_map(records, tmp_path / "m.html")
    browser.get((tmp_path / "m.html").as_uri())
    _wait(browser, "return document.querySelectorAll('.geomap-marker').length === 2")
    assert browser.execute_script("return document.querySelectorAll('.geomap-country').length") > 150
    # the markers sit inside the visible map, where the map framed them
    inside = browser.execute_script("""
        const box = document.getElementById('map').getBoundingClientRect();
        return Array.from(document.querySelectorAll('.geomap-marker')).every((m) => {
          const r = m.getBoundingClientRect();
          return r.left >= box.left && r.right <= box.right && r.top >= box.top && r.bottom <= box.bottom; });""")
    assert inside
    browser.save_screenshot(str(tmp_path / "map.png"))
