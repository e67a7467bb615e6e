"""The local web page, end to end in a real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

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


def test_a_bomb_upload_gets_413_with_the_message_and_the_server_goes_on(server, tiny_root, tmp_path):
    from conftest import claim_size

    detector, url = server
    Image.new("L", (16, 16)).save(tmp_path / "bomb.png")
    claim_size(tmp_path / "bomb.png", 60000, 60000)
    status, answer = _post(url, (tmp_path / "bomb.png").read_bytes())
    assert status == 413 and "60000x60000" in answer["error"] and "megapixels" in answer["error"]
    path = tiny_root / "builtin/photos-a/fake/repaint/images/test/test-00002.png"
    status, answer = _post(url, path.read_bytes())  # the next upload is served as usual
    assert status == 200 and answer["score"] == pytest.approx(detector.predict(path).score, abs=1e-6)


def test_an_exif_rotated_upload_comes_back_upright(server, tiny_root, tmp_path):
    _, url = server
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.open(tiny_root / "builtin/photos-a/real/test/test-00001.png").convert("RGB").resize((80, 50)).save(
        tmp_path / "phone.jpg", exif=exif)
    status, answer = _post(url, (tmp_path / "phone.jpg").read_bytes())
    assert status == 200 and (answer["width"], answer["height"]) == (50, 80)
    assert any("EXIF orientation" in n for n in answer["notes"])


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
        # the model's card has a calibrated verdict threshold: the word is the API's whatever the slider says,
        # and the page names the rule and where its threshold came from
        assert expected.verdict_rule.calibrated
        assert page.inner_text("#verdict") == ("manipulated" if expected.is_fake else "looks real")
        assert "end of training on the valid split" in page.inner_text("#rule")
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (`apt-get install chromium`; .ci/run does this)")
def test_page_of_an_uncalibrated_checkpoint_keeps_the_slider_verdict(tmp_path):
    """A card without a verdict threshold (written before calibration existed): score > the slider, as before."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')")
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoint-v0.1"
    detector = load(fixture / "patches-C.safetensors", "cpu")
    httpd = make_server(detector, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    score = detector.predict(fixture / "rgb-80x60.png").score
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--headless=new", "--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{httpd.server_port}")
            page.set_input_files("#file", str(fixture / "rgb-80x60.png"))
            page.wait_for_selector("body[data-state=done]", timeout=60_000)
            for t in (0.0, 1.0):
                page.fill("#threshold", str(t))
                page.dispatch_event("#threshold", "input")
                assert page.inner_text("#verdict") == ("manipulated" if score > t else "looks real")
            assert "uncalibrated" in page.inner_text("#rule")
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (`apt-get install chromium`; .ci/run does this)")
def test_page_exif_photo_bomb_native_scale_and_downloads(server, tiny_root, tmp_path):
    """A phone photo shows upright; a bomb shows the server's message; the scale switch re-runs the image at
    native resolution; the mask and overlay can be downloaded."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')")
    from conftest import claim_size

    detector, url = server
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = Image.open(tiny_root / "builtin/photos-a/fake/repaint/images/test/test-00003.png").convert("RGB")
    photo.resize((150, 100)).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    Image.new("L", (16, 16)).save(tmp_path / "bomb.png")
    claim_size(tmp_path / "bomb.png", 60000, 60000)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--headless=new", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(url)
        page.set_input_files("#file", str(tmp_path / "phone.jpg"))
        page.wait_for_selector("body[data-state=done]", timeout=60_000)
        size = page.evaluate("[document.getElementById('mask').width, document.getElementById('mask').height]")
        assert size == [100, 150]  # upright, as the EXIF tag says
        assert "EXIF orientation" in page.inner_text("#notes")
        assert page.get_attribute("#downloadMask", "href").startswith("data:image/png;base64,")
        assert page.get_attribute("#downloadOverlay", "href").startswith("data:image/png;base64,")
        page.select_option("#scale", "native")
        page.wait_for_selector("body[data-state=done]", timeout=60_000)
        assert "tiles of" in page.inner_text("#notes")
        expected = detector.predict(tmp_path / "phone.jpg", scale="native").score
        assert page.inner_text("#score") == f"{expected:.3f}"
        page.set_input_files("#file", str(tmp_path / "bomb.png"))
        page.wait_for_selector("body[data-state=error]", timeout=60_000)
        assert "60000x60000" in page.inner_text("#status") and "megapixels" in page.inner_text("#status")
        browser.close()
