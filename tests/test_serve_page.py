"""retinanet-serve's page in a real headless Chromium (Debian's chromium and chromium-driver, driven by selenium):
an image chosen with the file picker or dropped on the page, its boxes drawn, the score slider filtering without the
server, class toggles, counts, the tile option of a large image, the JSON download (issue 28)."""

import base64
import json
import os
import shutil
import time

import cv2
import pytest

pytest.importorskip("fastapi", reason="retinanet-serve needs the [serve] extra (fastapi, uvicorn, python-multipart)")
webdriver = pytest.importorskip("selenium.webdriver", reason="the page test drives Chromium with selenium ([test])")

import requests  # noqa: E402

from keras_retinanet import load_detector  # noqa: E402
from keras_retinanet.serve import ServeSettings, create_app  # noqa: E402

from helpers.scene_models import scene, training_model  # noqa: E402
from helpers.serve_support import running  # noqa: E402

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)),
                None)  # fmt: skip
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no headless browser: install Debian's chromium and chromium-driver (apt-get install chromium "
    "chromium-driver; .ci/run does)",
)
# Where the test leaves its screenshot for a person to look at (default: the test's temporary folder).
SCREENSHOT_DIR = os.environ.get("KERAS_RETINANET_SCREENSHOT_DIR")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("page")
    model_path = str(folder / "model.keras")
    training_model().save(model_path)
    # At most 100 detections an image (or a tile): the untrained model finds more, so the page shows its cap.
    app = create_app(load_detector(model_path, max_detections=100), ServeSettings(max_batch_wait_ms=0),
                     model_name="cells.keras")  # fmt: skip
    with running(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    downloads = str(tmp_path_factory.mktemp("downloads"))
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,860", "--force-device-scale-factor=1"):  # fmt: skip
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"download.default_directory": downloads,
                                              "download.prompt_for_download": False})  # fmt: skip
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def wait(condition, timeout=120, what="the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def drawn(browser):
    return int(browser.find_element("id", "canvas").get_attribute("data-drawn"))


def shown_count(browser):
    return int(browser.find_element("id", "total-count").text)


def class_counts(browser):
    rows = browser.find_elements("css selector", "#classes tbody tr")
    return {row.get_attribute("data-name"): int(row.find_element("css selector", ".count").text) for row in rows}


def above(answer, threshold, hidden=()):
    return sum(1 for score, name in zip(answer["scores"], answer["names"]) if score > threshold and name not in hidden)


def test_the_page_draws_detections_and_filters_them_in_the_browser(server, browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    path = str(tmp_path / "cells.png")
    cv2.imwrite(path, scene(240, 320, seed=7))
    with open(path, "rb") as handle:
        answer = requests.post(server + "/predict", data=handle.read(), timeout=120).json()

    browser.get(server + "/")
    wait(lambda: browser.find_element("tag name", "body").get_attribute("data-ready") == "1", what="the model line")
    assert "cells.keras: resnet50, 2 classes" in browser.find_element("id", "model-line").text
    assert not browser.find_element("id", "layout").is_displayed()  # nothing but the drop zone before an image
    browser.find_element("id", "file-input").send_keys(path)
    wait(lambda: drawn(browser) > 0, what="the boxes")
    # At the slider's start (0.50) the page draws the server's detections above 0.50, and counts them.
    assert browser.find_element("id", "threshold-value").text == "0.50"
    at_half = drawn(browser)
    assert at_half == shown_count(browser) == above(answer, 0.5) > 10
    assert class_counts(browser) == {
        name: sum(1 for score, other in zip(answer["scores"], answer["names"]) if other == name and score > 0.5)
        for name in ("cell", "debris")}  # fmt: skip
    requests_before = requests.get(server + "/health", timeout=30).json()["answered"]

    # The slider moved with the keyboard, as a person would: 20 steps of 0.01.
    slider = browser.find_element("id", "threshold")
    slider.click()
    value = float(slider.get_attribute("value"))
    slider.send_keys(*([Keys.ARROW_RIGHT] * 20))
    target = round(float(slider.get_attribute("value")), 2)
    assert target > value
    wait(lambda: browser.find_element("id", "threshold-value").text == f"{target:.2f}", what="the slider's value")
    assert drawn(browser) == shown_count(browser) == above(answer, target) < at_half
    assert requests.get(server + "/health", timeout=30).json()["answered"] == requests_before  # no new request

    # A class switched off is no longer drawn; its count stays in the table.
    before = class_counts(browser)
    browser.find_element("css selector", '#classes tr[data-name="debris"] input').click()
    assert drawn(browser) == above(answer, target, hidden=("debris",)) < above(answer, target)
    assert class_counts(browser) == before

    # The image is larger than 1.5 x the model's 96 px: the page offers tiles of the model's size.
    tiles = browser.find_element("id", "tile-options")
    assert tiles.is_displayed()
    assert browser.find_element("id", "tile-size").get_attribute("value") == "96"
    assert "240" in browser.find_element("id", "tile-hint").text

    # Download JSON: the detections shown, with the threshold and the hidden classes.
    browser.find_element("id", "download").click()
    saved = os.path.join(browser.downloads, "cells.detections.json")
    wait(lambda: os.path.exists(saved) and os.path.getsize(saved) > 0, timeout=30, what="the download")
    time.sleep(0.2)
    with open(saved) as handle:
        record = json.load(handle)
    assert record["score_threshold"] == pytest.approx(target) and record["hidden_classes"] == ["debris"]
    assert len(record["scores"]) == drawn(browser) and set(record["names"]) <= {"cell"}
    assert record["width"] == 320 and record["height"] == 240

    # The debris switched back on, the slider back to 0.30: the picture a person would look at.
    browser.find_element("css selector", '#classes tr[data-name="debris"] input').click()
    slider.send_keys(*([Keys.ARROW_LEFT] * (int(round((target - 0.3) * 100)))))
    wait(lambda: browser.find_element("id", "threshold-value").text == "0.30", what="the slider at 0.30")
    assert drawn(browser) == above(answer, 0.3)
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot = os.path.join(SCREENSHOT_DIR or str(tmp_path), "serve_page.png")
    os.makedirs(os.path.dirname(screenshot), exist_ok=True)
    assert browser.save_screenshot(screenshot)
    assert os.path.getsize(screenshot) > 10_000


def test_an_image_dropped_on_the_page_and_tiles_on_request(server, browser, tmp_path):
    """A drop event carrying a file (what the browser makes of a drag from the desktop); then tiles asked for."""
    image = scene(300, 400, seed=8)
    data = cv2.imencode(".png", image)[1].tobytes()
    tiled = requests.post(server + "/predict", params={"tile": 96}, data=data, timeout=120).json()
    browser.get(server + "/")
    wait(lambda: browser.find_element("tag name", "body").get_attribute("data-ready") == "1", what="the page")
    browser.execute_script(
        """
        const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
        const zone = document.getElementById("drop-zone");
        zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        """,
        base64.b64encode(data).decode("ascii"),
    )
    wait(lambda: "dropped.png: 400x300 px" in browser.find_element("id", "status").text, what="the dropped image")
    whole = drawn(browser)
    assert whole > 0
    browser.find_element("id", "tile-enable").click()  # re-detects with tile=96
    wait(lambda: drawn(browser) == above(tiled, 0.5) and drawn(browser) != whole, what="the tiled detections")
    assert shown_count(browser) == above(tiled, 0.5)
    # The cap, as the server says it: tiles of this untrained model give the model's whole quota of 100.
    capped = browser.find_element("id", "capped")
    assert tiled["capped"] and capped.is_displayed() and "for each tile" in capped.text
    # Overlap and merge beside the tile size, auto by default; another choice detects again with it.
    from selenium.webdriver.support.ui import Select

    overlap, merge = Select(browser.find_element("id", "tile-overlap")), Select(browser.find_element("id", "tile-merge"))
    assert overlap.first_selected_option.get_attribute("value") == "auto" == merge.first_selected_option.get_attribute(
        "value")  # fmt: skip
    chosen = requests.post(server + "/predict", params={"tile": 96, "tile_overlap": 0.5, "tile_merge": "nms"},
                           data=data, timeout=120).json()  # fmt: skip
    assert above(chosen, 0.5) != above(tiled, 0.5)
    overlap.select_by_value("0.5")
    merge.select_by_value("nms")
    wait(lambda: drawn(browser) == above(chosen, 0.5), what="the detections with overlap 0.5 and nms")


def test_a_server_error_is_shown_in_one_line(server, browser, tmp_path):
    path = str(tmp_path / "not-an-image.png")
    with open(path, "wb") as handle:
        handle.write(b"this is not an image")
    browser.get(server + "/")
    wait(lambda: browser.find_element("tag name", "body").get_attribute("data-ready") == "1", what="the page")
    browser.find_element("id", "file-input").send_keys(path)
    status = wait(lambda: browser.find_element("id", "status").text.startswith("400:") and
                  browser.find_element("id", "status"), what="the error")  # fmt: skip
    assert "not an image" in status.text and "error" in status.get_attribute("class")
