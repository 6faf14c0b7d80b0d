"""Frames/s of imagined play, measured where a player sees them: in the browser (not a test).

    python bench/play_fps.py --model runs/demo/model [--seconds 10] [--screenshot docs/play.png]

Starts `vidworld play --model M --port 0` as a subprocess (the real command), opens the page in headless
Debian chromium (`apt-get install chromium`; playwright's Python API drives it), sets the page's speed to
"as fast as it goes", holds a key for --seconds and counts the frames the page received and drew in that
window (its own counters, read with `performance.now()`). Prints one table row per run; `--real` also
replays the real env beside the imagined one; `--screenshot` saves the page at the end.

The server and the browser share the machine's cores, as they do for a player. Extra arguments after `--`
go to `vidworld play` (e.g. `-- --threads 2 --precision fp32`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def chromium() -> str:
    for candidate in (os.environ.get("VIDWORLD_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    sys.exit("play_fps: no chromium executable: apt-get install chromium (or set VIDWORLD_CHROMIUM)")


def start_server(model: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "vidworld.cli", "play", "--model", model, "--port", "0", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    if not line.startswith("vidworld play: serving "):
        proc.kill()
        sys.exit(f"play_fps: the server did not start: {line.strip() or 'no output'} (command: {' '.join(cmd)})")
    return proc, line.split()[3]


def measure(url: str, seconds: float, key: str | None, real: bool, screenshot: str | None) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 820})
        page.goto(url)
        page.wait_for_function("() => window.vidworldPlay && (window.vidworldPlay.stats().framesReceived >= 1 "
                               "|| !document.getElementById('error').hidden)", timeout=60_000)
        if page.evaluate("() => window.vidworldPlay.stats().framesReceived") < 1:  # the page shows an error
            message = page.text_content("#error")
            browser.close()
            sys.exit(f"play_fps: the page shows an error: {message}")
        hello = page.evaluate("() => window.vidworldPlay.hello()")
        key = key or hello["actions"][-1]["keys"][0]
        if real:
            page.check("#real-toggle")
            page.wait_for_selector("#real-figure:not([hidden])", timeout=30_000)
        page.select_option("#speed", "0")  # as fast as it goes
        page.keyboard.down(key)  # warm up for a second, then count
        time.sleep(1.0)
        s0 = page.evaluate("() => window.vidworldPlay.stats()")
        time.sleep(seconds)
        s1 = page.evaluate("() => window.vidworldPlay.stats()")
        page.keyboard.up(key)
        if screenshot:  # a fresh context and a few steps each way, so the real env is still in view
            page.select_option("#speed", "15")
            page.wait_for_function("() => window.vidworldPlay.stats().pending === 0")
            page.keyboard.press("Escape")
            page.wait_for_function("() => document.getElementById('steps').textContent === '0'")
            keys = [a["keys"][0] for a in hello["actions"]]
            for i in range(12):
                page.keyboard.press(keys[(i // 3) % len(keys)])
                page.wait_for_function(f"() => Number(document.getElementById('steps').textContent) >= {i + 1}")
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=screenshot, full_page=True)
        browser.close()
    elapsed = (s1["now"] - s0["now"]) / 1000.0
    frames = s1["framesReceived"] - s0["framesReceived"]
    model_ms = (s1["modelMsTotal"] - s0["modelMsTotal"]) / max(frames, 1)
    return {"model": hello["model"], "key": key, "frames": frames, "seconds": elapsed,
            "fps": frames / elapsed if elapsed > 0 else 0.0, "page_fps": s1["fps"], "model_ms": model_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="world model folder")
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to hold the key (after 1 s of warm-up)")
    ap.add_argument("--key", default=None, help="key to hold (default: the last action's first key)")
    ap.add_argument("--real", action="store_true", help="also replay the real env side by side")
    ap.add_argument("--screenshot", default=None, help="save the page as a PNG at the end (e.g. docs/play.png)")
    args, extra = ap.parse_known_args()
    extra = [a for a in extra if a != "--"]
    proc, url = start_server(args.model, extra)
    try:
        r = measure(url, args.seconds, args.key, args.real, args.screenshot)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    m = r["model"]
    print("| model | frame size | real env | server args | key held | frames/s in the browser | "
          "page counter (last 1 s) | model ms/step (mean) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.model} ({m['kind']}, {m['env_id']}) | {m['frame_size']} | {'yes' if args.real else 'no'} | "
          f"{' '.join(extra) or '(defaults)'} | {r['key']} | **{r['fps']:.1f}** ({r['frames']} frames in "
          f"{r['seconds']:.1f} s) | {r['page_fps']} | {r['model_ms']:.1f} |")
    if args.screenshot:
        print(f"screenshot: {args.screenshot}")


if __name__ == "__main__":
    main()
