"""The play server without a browser: page, static files, websocket protocol, uploads, downloads, hardening."""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.models.tiny import FRAME, K
from vidworld.play.server import LOOPBACK_HOSTS, PlayServer, create_app
from vidworld.play.session import PlaySession

PIXELS = FRAME * FRAME * 3


def frame_of(msg: dict, key: str = "frame") -> np.ndarray:
    raw = base64.b64decode(msg[key] if key == "frame" else msg["real"]["frame"])
    assert len(raw) == PIXELS
    return np.frombuffer(raw, np.uint8).reshape(FRAME, FRAME, 3)


@contextlib.contextmanager
def open_session(client: TestClient) -> Iterator[tuple[Any, dict, dict]]:
    """(socket, hello, first frame) of a new tab; closed on exit."""
    with client.websocket_connect("/ws") as ws:
        hello = ws.receive_json()
        first = ws.receive_json()
        yield ws, hello, first


def ask(ws, msg) -> dict:
    ws.send_text(msg if isinstance(msg, str) else json.dumps(msg))
    return ws.receive_json()


def png_data_url(img: np.ndarray, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


# ---------------------------------------------------------------------------------------------- page
def test_page_and_its_static_files_load(client: TestClient):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for needle in ('id="frame"', 'id="fps"', 'id="steps"', 'id="error"', "/static/play.js"):
        assert needle in page.text
    for name in ("play.js", "play.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/missing.js").status_code == 404


@pytest.mark.parametrize("path", [
    "/static/../session.py", "/static/../../../pyproject.toml", "/static/%2e%2e/session.py",
    "/static/..%2fsession.py", "/static/%2e%2e%2f%2e%2e%2fplay%2fsession.py", "/static//etc/passwd",
    "/static/%2fetc%2fpasswd", "/../pyproject.toml", "/static/..\\session.py", "/static/.%2e/server.py",
])
def test_no_file_outside_the_static_folder_is_served(live_url: str, path: str):
    """Raw paths, sent as they are (no client-side normalisation of `..`), to the real uvicorn server."""
    u = urlsplit(live_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status in (400, 404), (path, resp.status)
    assert b"import" not in body and b"root:" not in body and b"[project]" not in body


# ------------------------------------------------------------------------------------------ websocket
def test_hello_names_the_actions_and_the_first_frame_is_a_real_context(client: TestClient, tiny_world):
    with open_session(client) as (ws, hello, first):
        assert [(a["meaning"], a["keys"][0]) for a in hello["actions"]] == [("LEFT", "ArrowLeft"), ("RIGHT", "ArrowRight")]
        assert hello["model"]["env_id"] == "CartPole-v1"  # from the dataset: the tiny model records none itself
        assert hello["model"]["kind"] == "diffusion" and hello["sampler_steps"]["available"]
        assert first["type"] == "frame" and first["step"] == 0 and first["size"] == FRAME
        assert first["reward"] is None and first["source"].startswith("dataset episode")


def test_steps_advance_and_report_reward_and_termination(client: TestClient):
    with open_session(client) as (ws, _, first):
        frames = [frame_of(first)]
        for i, action in enumerate([0, 1, 1, 0, 1], start=1):
            msg = ask(ws, {"type": "step", "action": action})
            assert msg["type"] == "frame" and msg["step"] == i
            assert isinstance(msg["reward"], float) and 0.0 <= msg["termination_prob"] <= 1.0
            assert isinstance(msg["terminated"], bool) and msg["model_ms"] > 0
            frames.append(frame_of(msg))
        assert any(not np.array_equal(frames[0], f) for f in frames[1:])  # the model imagines, not copies


@pytest.mark.parametrize("bad, says", [
    ("{not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    ('{"action": 1}', "unknown message type None"),
    ('{"type": "jump"}', "unknown message type 'jump'"),
    ('{"type": "step"}', "missing field(s) ['action']"),
    ('{"type": "step", "action": 1, "speed": 2}', "unknown field(s) ['speed']"),
    ('{"type": "step", "action": "1"}', "action must be an integer"),
    ('{"type": "step", "action": 1.5}', "action must be an integer"),
    ('{"type": "step", "action": true}', "action must be an integer"),
    ('{"type": "step", "action": 2}', "unknown action 2: expected an integer id in 0..1"),
    ('{"type": "step", "action": -1}', "unknown action -1"),
    ('{"type": "real", "on": "yes"}', "must be true or false"),
    ('{"type": "sampler_steps", "steps": 0}', "sampler steps must be an integer in 1..32"),
    ('{"type": "upload", "images": []}', "give 1..3 context images"),
    ("[" * 100000, "not JSON"),
])
def test_a_bad_message_gets_an_error_and_the_session_goes_on(client: TestClient, bad: str, says: str):
    with open_session(client) as (ws, _, _):
        assert ask(ws, {"type": "step", "action": 1})["step"] == 1
        err = ask(ws, bad)
        assert err["type"] == "error" and says in err["message"], err
        msg = ask(ws, {"type": "step", "action": 0})
        assert msg["type"] == "frame" and msg["step"] == 2  # same session, same rollout


def test_binary_message_is_an_error_too(client: TestClient):
    with open_session(client) as (ws, _, _):
        ws.send_bytes(b"\x00\x01")
        assert "binary messages" in ws.receive_json()["message"]
        assert ask(ws, {"type": "step", "action": 1})["step"] == 1


def test_reset_with_a_seed_replays_the_same_context_and_noise(client: TestClient):
    with open_session(client) as (ws, _, _):
        runs = []
        for _ in range(2):
            msgs = [ask(ws, {"type": "reset", "seed": 3})]
            msgs += [ask(ws, {"type": "step", "action": a}) for a in (1, 0, 1)]
            assert [m["step"] for m in msgs] == [0, 1, 2, 3]
            runs.append([frame_of(m) for m in msgs])
        assert all(np.array_equal(a, b) for a, b in zip(*runs))


def test_each_tab_has_its_own_session(client: TestClient, play_server: PlayServer):
    with open_session(client) as (ws1, h1, _), open_session(client) as (ws2, h2, _):
        assert h1["session"] != h2["session"] and len(play_server.sessions) == 2
        ask(ws1, {"type": "step", "action": 1})
        ask(ws1, {"type": "step", "action": 1})
        assert ask(ws2, {"type": "step", "action": 0})["step"] == 1
    deadline = time.monotonic() + 5
    while play_server.sessions and time.monotonic() < deadline:  # dropped when the tab's socket closes
        time.sleep(0.02)
    assert not play_server.sessions


# ----------------------------------------------------------------------------------------- contexts
def test_uploaded_images_become_the_context(client: TestClient):
    with open_session(client) as (ws, _, _):
        rng = np.random.default_rng(0)
        imgs = [rng.integers(0, 256, (FRAME, FRAME, 3), dtype=np.uint8) for _ in range(K)]
        msg = ask(ws, {"type": "upload", "images": [png_data_url(i) for i in imgs], "actions": [1, 0]})
        assert msg["type"] == "frame" and msg["step"] == 0 and "uploaded" in msg["source"]
        assert np.array_equal(frame_of(msg), imgs[-1])  # the newest context frame is shown as uploaded
        # one larger JPEG is resized to the model's frames; fewer than K images are padded with the first
        big = np.full((48, 40, 3), 200, np.uint8)
        msg = ask(ws, {"type": "upload", "images": [png_data_url(big, "JPEG")]})
        assert msg["type"] == "frame" and np.abs(frame_of(msg).astype(int) - 200).max() <= 3
        assert ask(ws, {"type": "step", "action": 1})["step"] == 1


@pytest.mark.parametrize("images, says", [
    (["data:image/png;base64,bm90IGFuIGltYWdl"], "not a readable image"),
    (["data:image/png;base64,@@@"], "not valid base64"),
    (["data:text/plain,hello"], "base64 data URL"),
    ([7], "expected a data URL string"),
    (["data:image/png;base64," + "A" * (3 * 1024 * 1024)], "larger than the 2 MB limit"),
    ("one", "give 1..3 context images"),
])
def test_bad_uploads_are_refused_and_the_session_goes_on(client: TestClient, images, says: str):
    with open_session(client) as (ws, _, _):
        err = ask(ws, {"type": "upload", "images": images})
        assert err["type"] == "error" and says in err["message"], err
        assert ask(ws, {"type": "step", "action": 1})["step"] == 1


def test_oversized_image_dimensions_are_refused_before_decoding(client: TestClient):
    with open_session(client) as (ws, _, _):
        wide = png_data_url(np.zeros((2, 5000, 3), np.uint8))  # a few hundred bytes, 5000 px wide
        assert "at most 4096" in ask(ws, {"type": "upload", "images": [wide]})["message"]
        too_many = [png_data_url(np.zeros((FRAME, FRAME, 3), np.uint8))] * (K + 1)
        assert "give 1..3" in ask(ws, {"type": "upload", "images": too_many})["message"]
        assert "context actions" in ask(ws, {"type": "upload", "images": too_many[:K], "actions": [0]})["message"]


# ---------------------------------------------------------------------------------------- options
def test_real_env_side_by_side_replays_the_recorded_state(client: TestClient, play_server: PlayServer):
    with open_session(client) as (ws, hello, _):
        ask(ws, {"type": "step", "action": 1})
        msg = ask(ws, {"type": "real", "on": True})  # switched on after a step: the real env catches up
        assert msg["type"] == "frame" and msg["real_on"] and msg["real"]["frame"]
        assert msg["real"]["reward"] is not None
        msg = ask(ws, {"type": "step", "action": 0})
        assert msg["step"] == 2 and msg["real"]["reward"] in (0.0, 1.0)
        assert ask(ws, {"type": "reset"})["real"]["reward"] is None  # a new context: the real env restarts there
        off = ask(ws, {"type": "real", "on": False})
        assert off["real"] is None and not off["real_on"]


def test_real_env_matches_the_dataset_under_its_own_actions(play_server: PlayServer, tiny_world):
    """Replaying the recorded state with the episode's own next actions reproduces its recorded frames."""
    session = PlaySession(play_server.models, play_server.contexts, precision="fp32", seed=0)
    view = session.reset()
    ep, start = session.context.where
    store = play_server.contexts.store()
    frames = store.load_episode(ep).frames
    actions = store.arrays(ep).actions
    t = start + K - 1
    n = min(5, len(actions) - t)
    assert n >= 1 and np.array_equal(session.set_real(True).real.frame, frames[t])
    for i in range(n):
        view = session.step(int(actions[t + i]))
        assert np.abs(view.real.frame.astype(int) - frames[t + i + 1].astype(int)).mean() < 1.0
    session.close()


def test_uploaded_context_cannot_be_replayed_and_says_why(client: TestClient):
    with open_session(client) as (ws, _, _):
        ask(ws, {"type": "upload", "images": [png_data_url(np.zeros((FRAME, FRAME, 3), np.uint8))]})
        err = ask(ws, {"type": "real", "on": True})
        assert err["type"] == "error" and "no recorded simulator state" in err["message"]
        assert ask(ws, {"type": "step", "action": 1})["real"] is None


def test_sampler_steps_reload_the_model_and_keep_the_state(client: TestClient, play_server: PlayServer):
    with open_session(client) as (ws, _, _):
        ask(ws, {"type": "step", "action": 1})
        assert ask(ws, {"type": "sampler_steps", "steps": 3}) == {"type": "options", "sampler_steps": 3, "real_on": False}
        session = next(iter(play_server.sessions.values()))
        assert session.model is not play_server.models.base and session.model is play_server.models.get(3)
        assert ask(ws, {"type": "step", "action": 0})["step"] == 2
        assert ask(ws, {"type": "sampler_steps", "steps": None})["sampler_steps"] is None
        assert session.model is play_server.models.base


def test_a_model_without_sampler_steps_plays_too(tmp_path, tiny_world):
    """Every PixelDecoder kind plays through the loader: here the copy-last baseline (no sampler knob)."""
    from vidworld.protocol import ActionSpec
    from vidworld.world_models.copy_last import CopyLastFrameModel

    CopyLastFrameModel(ActionSpec(n=2), context_length=K, frame_size=FRAME,
                       meta={"dataset": str(tiny_world.data), "env_id": "CartPole-v1"}).save_pretrained(tmp_path / "m")
    server = PlayServer(tmp_path / "m")
    with TestClient(create_app(server)) as c:
        with open_session(c) as (ws, hello, first):
            assert hello["model"]["kind"] == "copy_last" and not hello["sampler_steps"]["available"]
            msg = ask(ws, {"type": "step", "action": 1})
            assert msg["step"] == 1 and np.array_equal(frame_of(msg), frame_of(first))
            err = ask(ws, {"type": "sampler_steps", "steps": 2})
            assert err["type"] == "error" and "no sampler steps" in err["message"]


def test_an_rssm_plays_through_the_loader(tmp_path, tiny_world):
    """The RSSM (a PixelDecoder with a recurrent state) plays the same page: frames decoded, steps counted."""
    import torch

    from vidworld.protocol import ActionSpec
    from vidworld.world_models.rssm.model import RSSMWorldModel
    from vidworld.world_models.rssm.networks import RSSMNetworks

    torch.manual_seed(0)
    nets = RSSMNetworks(frame_size=FRAME, num_actions=2, depth=4, deter=16, hidden=16, stoch=4, classes=4,
                        units=16, head_layers=1)
    RSSMWorldModel(nets, ActionSpec(n=2), K, meta={"dataset": str(tiny_world.data), "env_id": "CartPole-v1"}
                   ).save_pretrained(tmp_path / "m")
    with TestClient(create_app(PlayServer(tmp_path / "m"))) as c:
        with open_session(c) as (ws, hello, first):
            assert hello["model"]["kind"] == "rssm" and hello["actions"][0]["meaning"] == "LEFT"
            frame_of(first)
            for i in range(3):
                msg = ask(ws, {"type": "step", "action": i % 2})
                assert msg["type"] == "frame" and msg["step"] == i + 1
                frame_of(msg)


# ---------------------------------------------------------------------------------------- download
def test_download_this_rollout(client: TestClient):
    with open_session(client) as (ws, hello, _):
        for a in (1, 1, 0):
            ask(ws, {"type": "step", "action": a})
        gif = client.get("/rollout", params={"session": hello["session"], "format": "gif"})
        assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif" and gif.content[:4] == b"GIF8"
        assert "attachment" in gif.headers["content-disposition"]
        frames = Image.open(io.BytesIO(gif.content))
        assert frames.size[0] >= 256  # upscaled for viewing
        ask(ws, {"type": "real", "on": True})
        mp4 = client.get("/rollout", params={"session": hello["session"], "format": "mp4"})
        assert mp4.status_code == 200 and mp4.content[4:8] == b"ftyp"
        assert client.get("/rollout", params={"session": "nope", "format": "mp4"}).status_code == 404
        assert client.get("/rollout", params={"session": hello["session"], "format": "avi"}).status_code == 400


# ----------------------------------------------------------------------------------------- hardening
def test_loopback_only_hosts_and_same_origin_websockets(play_server: PlayServer):
    app = create_app(play_server, allowed_hosts=LOOPBACK_HOSTS)
    with TestClient(app, base_url="http://127.0.0.1:7860") as c:
        assert c.get("/").status_code == 200
        assert c.get("/", headers={"host": "attacker.example"}).status_code == 400  # DNS rebinding
        with c.websocket_connect("ws://127.0.0.1:7860/ws", headers={"origin": "http://127.0.0.1:7860"}) as ws:
            assert ws.receive_json()["type"] == "hello"
        with pytest.raises(WebSocketDisconnect) as e, \
                c.websocket_connect("ws://127.0.0.1:7860/ws", headers={"origin": "http://attacker.example"}) as ws:
            ws.receive_json()
        assert e.value.code == 1008


def test_the_model_runs_off_the_event_loop(live_url: str, play_server: PlayServer, monkeypatch):
    """While one tab's step is computing, the server still answers pages and other tabs at once."""
    from websockets.sync.client import connect

    started, release = threading.Event(), threading.Event()
    real_step = PlaySession.step

    def slow_step(self, action):
        started.set()
        release.wait(10)
        return real_step(self, action)

    monkeypatch.setattr(PlaySession, "step", slow_step)
    ws_url = live_url.replace("http", "ws") + "ws"
    with connect(ws_url) as slow:
        slow.recv(), slow.recv()
        slow.send(json.dumps({"type": "step", "action": 1}))
        assert started.wait(10)
        u = urlsplit(live_url)
        t0 = time.monotonic()
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
        conn.request("GET", "/")
        assert conn.getresponse().status == 200
        with connect(ws_url) as other:  # its first frame waits for the model thread; its hello does not
            assert json.loads(other.recv(timeout=5))["type"] == "hello"
        assert time.monotonic() - t0 < 3
        release.set()
        assert json.loads(slow.recv(timeout=10))["step"] == 1
