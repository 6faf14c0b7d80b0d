"""The play page in a real headless browser: Debian's chromium driven by playwright's Python API.

Needs `pip install playwright` (the API only; its own browser download is not used) and a chromium
executable (`apt-get install chromium` -> /usr/bin/chromium; or set VIDWORLD_CHROMIUM). Without either the
test SKIPS naming what is missing, so `make test` works on any machine; CI sets VIDWORLD_REQUIRE_BROWSER=1
(.ci/run installs both) to turn that skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright's Python API is not installed (pip install playwright)"
    if chromium_path() is None:
        return "no chromium executable: apt-get install chromium (or set VIDWORLD_CHROMIUM=/path/to/chromium)"
    return None


def chromium_path() -> str | None:
    for candidate in (os.environ.get("VIDWORLD_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    missing = _missing_browser()
    if missing:
        if os.environ.get("VIDWORLD_REQUIRE_BROWSER") == "1":
            pytest.fail(f"VIDWORLD_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(f"browser test skipped: {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: CI and these sessions run as root, where chromium's sandbox refuses to start.
        b = p.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


CANVAS_PIXELS = """() => {
  const c = document.getElementById('frame');
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 37 === 0));
}"""


def png(size: int, value: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def steps(page) -> int:
    return int(page.inner_text("#steps"))


def test_play_page_in_a_real_browser(browser, live_url: str):
    page = browser.new_page()
    try:
        page.goto(live_url)
        page.wait_for_function("() => window.vidworldPlay && window.vidworldPlay.stats().framesReceived >= 1",
                               timeout=10_000)
        assert page.title() == "vidworld play"
        assert page.inner_text("#model-name").find("CartPole-v1") >= 0
        assert page.locator("#actions button .meaning").all_inner_texts() == ["LEFT", "RIGHT"]
        before = page.evaluate(CANVAS_PIXELS)
        assert any(before)  # the context frame was drawn
        assert steps(page) == 0

        # hold a key: the page keeps stepping, one frame in flight at a time
        page.keyboard.down("ArrowRight")
        page.wait_for_function("() => Number(document.getElementById('steps').textContent) >= 5", timeout=10_000)
        page.keyboard.up("ArrowRight")
        page.wait_for_function("() => window.vidworldPlay.stats().pending === 0", timeout=5_000)
        held = steps(page)
        assert held >= 5
        assert page.evaluate(CANVAS_PIXELS) != before  # the canvas shows imagined frames now
        assert page.inner_text("#reward") != "–" and page.inner_text("#termination") != "–"

        # a single press, and an on-screen button
        page.keyboard.press("ArrowLeft")
        page.wait_for_function(f"() => Number(document.getElementById('steps').textContent) > {held}", timeout=5_000)
        n = steps(page)
        page.click("#actions button[data-action='1']")
        page.wait_for_function(f"() => Number(document.getElementById('steps').textContent) > {n}", timeout=5_000)

        # a bad message: the error is shown, and the session goes on
        page.evaluate("() => window.vidworldPlay.sendRaw('{garbage')")
        page.wait_for_selector("#error:not([hidden])", timeout=5_000)
        assert "not JSON" in page.inner_text("#error")
        page.evaluate("() => window.vidworldPlay.sendRaw(JSON.stringify({type: 'step', action: 9}))")
        page.wait_for_function("() => document.getElementById('error').textContent.includes('unknown action 9')",
                               timeout=5_000)
        n = steps(page)
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"() => Number(document.getElementById('steps').textContent) > {n}", timeout=5_000)

        # the real env side by side (the tiny dataset recorded CartPole's state)
        page.check("#real-toggle")
        page.wait_for_selector("#real-figure:not([hidden])", timeout=5_000)
        # reset: a new real context, the step counter starts over
        page.keyboard.press("Escape")
        page.wait_for_function("() => document.getElementById('steps').textContent === '0'", timeout=5_000)

        # sampler steps, and a context uploaded from image files
        page.select_option("#sampler-steps", "3")
        page.wait_for_function("() => document.getElementById('status').textContent === 'sampler steps: 3'",
                               timeout=5_000)
        page.set_input_files("#upload", files=[{"name": "a.png", "mimeType": "image/png", "buffer": png(16, 120)},
                                               {"name": "b.png", "mimeType": "image/png", "buffer": png(16, 200)}])
        page.wait_for_function("() => document.getElementById('source').textContent.includes('uploaded')",
                               timeout=5_000)
        href = page.get_attribute("#download-gif", "href")
        assert href.startswith("/rollout?session=") and href.endswith("format=gif")
    finally:
        page.close()
