"""The page in a real browser (Debian's headless chromium, driven by selenium): upload the demo
photo, see the detector's outlines, keep one class, paint a stroke (undo it, paint it again),
run, and read back the downloadable result: it differs from the photo only in the mask the page
showed and the stroke (and the seam around them), and the stroke itself was reconstructed.

On the tiny export (conftest.py) by default. With JAXINPAINT_WEB_EXPORTED=FOLDER it serves that
export instead, and JAXINPAINT_WEB_SCREENSHOT=PATH saves the page with its result (the README's
picture: `JAXINPAINT_WEB_EXPORTED=runs/demo/exported JAXINPAINT_WEB_SCREENSHOT=docs/images/
web_page.png pytest tests/test_web_browser.py -s`). It prints the page's time to a result.
Without chromium and chromedriver it is skipped, unless JAXINPAINT_BROWSER_TEST=required (as
`make test` sets it, after installing them).
"""

import base64
import io
import os
import shutil
import time

import cv2
import httpx2
import numpy as np
import pytest
from PIL import Image
from web_server import running

from data_pipeline.compose import demo_photo
from serve.web import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FEATHER = 3  # Reconstructor's default seam
# The stroke, in photo pixels: across the astronaut's cheek, inside her face's crop.
STROKE = ((190, 150), (225, 165))


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        message = "the browser test needs chromium and chromium-driver (Debian packages)"
        if os.environ.get("JAXINPAINT_BROWSER_TEST") == "required":
            pytest.fail(message + "; `make test` installs them")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1300",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def export(request):
    given = os.environ.get("JAXINPAINT_WEB_EXPORTED")
    return given or str(request.getfixturevalue("tiny_export") / "exported")


def wait_for(driver, states, timeout=240):
    """Waits until the page's `body[data-state]` is one of `states`; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        state = driver.execute_script("return document.body.dataset.state")
        if state in states:
            return state
        if state == "error" or time.monotonic() > deadline:
            error = driver.execute_script("return document.getElementById('error').textContent")
            raise AssertionError(f"the page is {state!r}, not {states}: {error}")
        time.sleep(0.1)


def capsule(shape, points, radius):
    """The pixels within `radius` of the segment between two points."""
    out = np.zeros(shape, np.uint8)
    cv2.line(out, points[0], points[1], 1, thickness=2 * radius + 1)
    return out > 0


def shown_hole(browser, url, path) -> np.ndarray:
    """The mask the page shows for its choice of classes and threshold, as /detect gives it."""
    from selenium.webdriver.common.by import By

    classes = [
        t.get_attribute("data-category")
        for t in browser.find_elements(By.CSS_SELECTOR, "#classes input[type=checkbox]")
        if t.is_selected()
    ]
    threshold = browser.find_element(By.ID, "threshold").get_attribute("value")
    with open(path, "rb") as f:
        answer = httpx2.post(
            url + "/detect",
            files={"photo": ("a.png", f.read())},
            data={"classes": ",".join(classes) or "none", "threshold": threshold},
            timeout=300,
        ).json()
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["mask"])))) > 127


def test_the_page_reconstructs_a_photo_with_a_painted_stroke(browser, export, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    photo = demo_photo()[0]
    path = tmp_path / "astronaut.png"
    Image.fromarray(photo).save(path)
    with running(create_app(export)) as url:
        browser.get(url + "/")
        wait_for(browser, {"idle"})
        browser.find_element(By.ID, "file").send_keys(str(path))
        wait_for(browser, {"ready"})

        # What was found: the face's box and each detection's outline, class and score.
        outlines = browser.find_elements(By.CSS_SELECTOR, "#outlines g.detection")
        labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#outlines text")]
        assert outlines and labels and browser.find_elements(By.CSS_SELECTOR, "#outlines rect")
        toggles = browser.find_elements(By.CSS_SELECTOR, "#classes input[type=checkbox]")
        kept = toggles[0].get_attribute("data-category")  # the best-scored class
        assert labels[0].split()[0] in {t.get_attribute("data-category") for t in toggles}

        # Keep one class: the others' outlines turn dashed and the mask is asked for again.
        for toggle in toggles[1:]:
            toggle.click()
        wait_for(browser, {"ready"})  # the page asks for the new mask
        shown = [
            e.get_attribute("data-category")
            for e in browser.find_elements(By.CSS_SELECTOR, "#outlines g.detection:not(.off)")
        ]
        assert shown and set(shown) == {kept}
        size = int(browser.find_element(By.ID, "brush-size").get_attribute("value"))
        brush = capsule(photo.shape[:2], STROKE, size // 2 + 2)  # round, anti-aliased edge
        hole = shown_hole(browser, url, path)
        if hole[brush].any():
            # The stroke must add to the mask: the untrained detector's covers the whole face,
            # so the threshold slider, at its top, drops every detection.
            browser.execute_script(
                """const slider = document.getElementById("threshold");
                slider.value = slider.max;
                slider.dispatchEvent(new Event("input"));"""
            )
            wait_for(browser, {"ready"})
            assert not browser.find_elements(By.CSS_SELECTOR, "#outlines g.detection:not(.off)")
            hole = shown_hole(browser, url, path)
            assert not hole.any()

        # A brush stroke, in the page's pixels: the canvas may be shown scaled. Undo takes it
        # back; painted again, it stays.
        canvas = browser.find_element(By.ID, "mask-canvas")
        rect = browser.execute_script("return arguments[0].getBoundingClientRect()", canvas)
        scale = rect["width"] / photo.shape[1]
        (x0, y0), (x1, y1) = ((x * scale, y * scale) for x, y in STROKE)
        left, top = -rect["width"] / 2, -rect["height"] / 2  # offsets are from the centre
        middle = [(a + b) // 2 for a, b in zip(*STROKE, strict=True)]

        def paint():
            actions = ActionChains(browser)
            actions.move_to_element_with_offset(canvas, round(left + x0), round(top + y0))
            actions.click_and_hold()
            for t in np.linspace(0.1, 1.0, 10):
                x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                actions.move_to_element_with_offset(canvas, round(left + x), round(top + y))
            actions.release().perform()
            return browser.execute_script(
                "return arguments[0].getContext('2d').getImageData(...arguments[1], 1, 1).data[3]",
                canvas,
                middle,
            )

        assert paint() == 255
        browser.find_element(By.ID, "undo").click()
        alpha = browser.execute_script(
            "return arguments[0].getContext('2d').getImageData(...arguments[1], 1, 1).data[3]",
            canvas,
            middle,
        )
        assert alpha == 0 and not browser.find_element(By.ID, "undo").is_enabled()
        assert paint() == 255

        browser.find_element(By.ID, "run").click()
        wait_for(browser, {"done"})
        seconds = float(browser.find_element(By.ID, "result-time").get_attribute("data-seconds"))
        print(f"\nthe page's time to a result: {seconds:.2f} s ({export})")
        # The result as the download link gives it.
        result_b64 = browser.execute_async_script(
            """const done = arguments[arguments.length - 1];
            fetch(document.getElementById("download-png").href)
              .then((r) => r.blob())
              .then((blob) => {
                const reader = new FileReader();
                reader.onload = () => done(reader.result.split(",")[1]);
                reader.readAsDataURL(blob);
              });"""
        )
        result = np.asarray(Image.open(io.BytesIO(base64.b64decode(result_b64))).convert("RGB"))
        if os.environ.get("JAXINPAINT_WEB_SCREENSHOT"):  # the whole page, the result too
            height = browser.execute_script("return document.body.scrollHeight")
            browser.set_window_size(1400, height + 140)  # + the window's own frame
            browser.save_screenshot(os.environ["JAXINPAINT_WEB_SCREENSHOT"])

    assert result.shape == photo.shape
    changed = np.any(result != photo, axis=-1)
    reach = 2 * (FEATHER + 2) + 1
    near = cv2.dilate((hole | brush).astype(np.uint8), np.ones((reach, reach), np.uint8)) > 0
    assert not changed[~near].any(), f"{changed[~near].sum()} pixels changed outside the mask"
    core = capsule(photo.shape[:2], STROKE, max(1, size // 2 - 2))
    assert changed[core].mean() > 0.9, "the stroke was not reconstructed"
