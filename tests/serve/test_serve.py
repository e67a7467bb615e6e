"""The local web page, end to end in a real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from weakloc.predict.detector import load
from weakloc.serve import make_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(trained_checkpoint):
    detector = load(trained_checkpoint, "cpu")
    httpd = make_server(detector, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield detector, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def _post(url: str, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url + "/api/predict", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_api_endpoint_agrees_with_the_python_api(server, tiny_root, tmp_path):
    detector, url = server
    path = tiny_root / "builtin/photos-a/fake/repaint/images/test/test-00002.png"
    status, answer = _post(url, path.read_bytes())
    assert status == 200
    assert answer["score"] == pytest.approx(detector.predict(path).score, abs=1e-6)
    assert (answer["width"], answer["height"]) == Image.open(path).size
    status, answer = _post(url, b"definitely not an image")
    assert status == 400 and "not a readable image" in answer["error"]


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (`apt-get install chromium`; .ci/run does this)")
def test_page_upload_shows_score_overlay_and_mask(server, tiny_root, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')")
    detector, url = server
    image = Image.open(tiny_root / "builtin/photos-a/fake/repaint/images/test/test-00004.png").resize((120, 90))
    image.save(tmp_path / "upload.png")
    expected = detector.predict(tmp_path / "upload.png")
    args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("document.getElementById('model').textContent.includes('patches')")
        page.set_input_files("#file", str(tmp_path / "upload.png"))
        page.wait_for_selector("body[data-state=done]", timeout=60_000)
        assert page.inner_text("#score") == f"{expected.score:.3f}"
        overlay_width = page.evaluate("document.getElementById('overlay').naturalWidth")
        assert overlay_width > 100  # the overlay picture was decoded and shown
        size = page.evaluate("[document.getElementById('mask').width, document.getElementById('mask').height]")
        assert size == [120, 90]  # the mask at the image's own resolution

        def fake_pixels(threshold: float) -> int:
            page.fill("#threshold", str(threshold))
            page.dispatch_event("#threshold", "input")
            return int(page.get_attribute("#mask", "data-fake-pixels"))

        # the page's mask at each threshold equals the Python API's mask (map quantised to 8 bits as sent)
        quantised = np.clip(expected.map * 255 + 0.5, 0, 255).astype(np.uint8) / 255
        for t in (0.0, 0.3, 0.6, 1.0):
            assert fake_pixels(t) == int((quantised > t).sum())
        assert fake_pixels(0.0) >= fake_pixels(1.0)
        verdict = page.inner_text("#verdict")
        assert verdict == ("manipulated" if expected.score > 1.0 else "looks real")
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()
