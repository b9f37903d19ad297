"""The web page in a real browser: Debian's Chromium, headless, driven by Playwright.

Set OPENVASA_SCREENSHOT_DIR to keep the screenshot of the page in use (docs/ has one).
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (make setup installs it: apt-get install chromium)",
)
# Headless, offline, nothing but the page: no GPU, QUIC, sync, updates or background traffic;
# a fake microphone (a beeping tone) that needs no permission prompt.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
CANVAS_STATS = """() => {
    const c = document.getElementById('view');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = 0, s2 = 0;
    for (let i = 0; i < d.length; i += 4) { s += d[i + 1]; s2 += d[i + 1] * d[i + 1]; }
    const n = d.length / 4;
    return [s / n, Math.sqrt(s2 / n - (s / n) ** 2)];
}"""


@pytest.fixture(scope="module")
def server(generator, tmp_path_factory):
    from openvasa.server import create_app
    from openvasa.server.background import BackgroundServer
    from openvasa.settings import ServerSettings

    settings = ServerSettings(data_dir=str(tmp_path_factory.mktemp("browser-server")))
    with BackgroundServer(create_app(settings, generator)) as running:
        yield running


@pytest.fixture
def page(tmp_path, server):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh profile every time
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1100, "height": 820},
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
        page.errors = errors
        page.goto(server.url)
        yield page
        browser.close()


def _frames(page) -> int:
    return int(page.text_content("#frames"))


def test_page_streams_an_uploaded_portrait_and_audio(page, astronaut, speech, tmp_path):
    from openvasa.audio import save_wav

    Image.fromarray(astronaut).save(tmp_path / "me.png")
    save_wav(speech.audio, tmp_path / "hello.wav")

    page.set_input_files("#portrait-file", str(tmp_path / "me.png"))
    page.wait_for_function("document.getElementById('portrait-label').textContent === 'me.png'")
    assert "selected" in page.get_attribute("#portrait-upload", "class")
    page.set_input_files("#audio-file", str(tmp_path / "hello.wav"))
    page.select_option("#emotion", "happy")
    page.click("#start")
    page.wait_for_function("Number(document.getElementById('frames').textContent) >= 40")
    assert page.text_content("#state") == "live"
    mean, spread = page.evaluate(CANVAS_STATS)
    assert spread > 20 and 30 < mean < 230  # a picture, not a blank canvas
    latency = page.text_content("#latency")
    assert latency.endswith(" ms") and int(latency[:-3]) > 0
    screenshot = tmp_path / "live-page.png"
    page.screenshot(path=str(screenshot))
    if os.environ.get("OPENVASA_SCREENSHOT_DIR"):
        shutil.copy(screenshot, Path(os.environ["OPENVASA_SCREENSHOT_DIR"]) / "live-page.png")
    shot = np.asarray(Image.open(screenshot))
    assert shot.shape[:2] == (820, 1100)

    # Every frame of the 5.4 s clip arrives, then the stream ends.
    n = int(np.ceil(speech.audio.duration_s * 25 - 1e-6))
    page.wait_for_function(
        "document.getElementById('state').textContent.startsWith('ended')", timeout=60_000
    )
    assert page.text_content("#state") == f"ended · {n} frames"
    assert _frames(page) == n

    # The same inputs as an MP4 to download.
    page.click("#make-video")
    page.wait_for_selector("#download:not([hidden])", timeout=120_000)
    video = page.request.get(page.eval_on_selector("#download", "a => a.href"))
    assert video.status == 200 and video.headers["content-type"] == "video/mp4"
    assert len(video.body()) > 10_000
    assert page.errors == []


def test_page_streams_the_microphone(page):
    page.click("#record")
    page.click("#start")
    page.wait_for_function("Number(document.getElementById('frames').textContent) >= 25")
    assert page.text_content("#state") == "live"
    page.click("#stop")
    page.wait_for_function("document.getElementById('state').textContent.startsWith('ended')")
    assert _frames(page) >= 25
    _, spread = page.evaluate(CANVAS_STATS)
    assert spread > 20
    assert page.errors == []
