"""The play server: a starlette app (one page, its static files, a websocket per tab, rollout downloads)
served by uvicorn.

    server = PlayServer("runs/demo/model")             # loads the model; fails fast on a bad folder
    app = create_app(server, allowed_hosts=LOOPBACK_HOSTS)
    serve(app, "127.0.0.1", 7860, announce=print)       # blocks until Ctrl-C

Routes: `GET /` the page; `GET /static/<file>` files of `vidworld/play/static/` only (starlette's StaticFiles
refuses paths that resolve outside it, e.g. `..` or symlinks); `WS /ws` one session per connection (per tab),
its state server-side, dropped when the tab closes; `GET /rollout?session=<token>&format=mp4|gif` that
session's rollout as a video (the token is random and sent only to its own tab). Nothing else on disk is
served. Every model call (init, step, decode, reloads, video encoding) runs on ONE worker thread, off the
event loop, so sockets stay responsive and sessions never run the model concurrently on the 2 cores.

Hardening for a local tool: with a loopback bind, requests must name a loopback Host (a web page elsewhere
cannot reach the server by DNS rebinding) and a websocket's Origin, when sent, must match its Host (no
cross-site websocket hijacking).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from vidworld.data.manifest import read_manifest
from vidworld.play.actions import action_bindings
from vidworld.play.messages import error_message, frame_message, options_message, parse_message
from vidworld.play.session import MAX_SAMPLER_STEPS, DatasetContexts, ModelCache, PlaySession
from vidworld.play.uploads import MAX_IMAGE_BYTES
from vidworld.precision import resolve_precision

STATIC_DIR = Path(__file__).resolve().parent / "static"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost"]


class PlayServer:
    """What all tabs share: the models, the dataset's contexts, the model thread, the live sessions."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", precision: str = "auto",
                 dataset: str | Path | None = None):
        self.models = ModelCache(model_dir, device)
        self.precision = resolve_precision(precision, self.models.base.device)
        model = self.models.base
        self.contexts = DatasetContexts(model, dataset)
        self.env_id = model.meta.get("env_id") or self._dataset_env_id()
        self.bindings = action_bindings(self.env_id, model.action_spec.n)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidworld-play-model")
        self.sessions: dict[str, PlaySession] = {}
        self.model_dir = Path(model_dir)

    def _dataset_env_id(self) -> str | None:
        path = self.contexts.windows.path
        try:
            return read_manifest(path / "manifest.json").get("env_id") if path is not None else None
        except (OSError, ValueError):
            return None  # no readable dataset: the first reset says so; meanings fall back to "action i"

    async def call(self, fn: Callable, *args: Any) -> Any:
        """Run `fn(*args)` on the model thread and await it (the event loop keeps serving meanwhile)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args))

    def new_session(self) -> tuple[str, PlaySession]:
        token = secrets.token_urlsafe(16)
        self.sessions[token] = PlaySession(self.models, self.contexts, self.precision)
        return token, self.sessions[token]

    def hello(self, token: str) -> dict[str, Any]:
        model = self.models.base
        return {
            "type": "hello", "session": token,
            "model": {"path": self.model_dir.name, "kind": self.models.kind, "env_id": self.env_id,
                      "frame_size": model.frame_size, "context_length": model.context_length,
                      "fps": model.meta.get("fps") or 15},
            "actions": [{"id": b.id, "meaning": b.meaning, "keys": list(b.keys)} for b in self.bindings],
            "sampler_steps": {"available": self.models.has_sampler_steps, "max": MAX_SAMPLER_STEPS},
            "max_image_bytes": MAX_IMAGE_BYTES,
        }

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------------------------------------ routes
async def index(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})


async def rollout(request: Request) -> Response:
    server: PlayServer = request.app.state.play
    session = server.sessions.get(request.query_params.get("session", ""))
    fmt = request.query_params.get("format", "mp4")
    if session is None:
        return JSONResponse({"error": "no such session (rollouts live as long as their tab)"}, status_code=404)
    if fmt not in ("mp4", "gif"):
        return JSONResponse({"error": f"format must be mp4 or gif, got {fmt!r}"}, status_code=400)
    try:
        data = await server.call(session.rollout_video, fmt)
    except ValueError as e:
        return JSONResponse({"error": str(e)}, status_code=409)
    media = "video/mp4" if fmt == "mp4" else "image/gif"
    return Response(data, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="vidworld-rollout.{fmt}"'})


def _origin_ok(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == ws.headers.get("host")


async def play_socket(ws: WebSocket) -> None:
    server: PlayServer = ws.app.state.play
    if not _origin_ok(ws):
        await ws.close(code=1008, reason="cross-origin websocket refused")
        return
    await ws.accept()
    token, session = server.new_session()
    try:
        await ws.send_json(server.hello(token))
        await _handle(ws, server, session, "reset", {})  # the first frame (or why there is none)
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            if msg.get("text") is None:
                await ws.send_json(error_message("binary messages are not understood; send JSON text"))
                continue
            try:
                kind, args = parse_message(msg["text"])
            except ValueError as e:
                await ws.send_json(error_message(str(e)))
                continue
            await _handle(ws, server, session, kind, args)
    except WebSocketDisconnect:
        pass
    finally:
        server.sessions.pop(token, None)
        with contextlib.suppress(RuntimeError):  # the executor is gone when the server shuts down
            await server.call(session.close)


async def _handle(ws: WebSocket, server: PlayServer, session: PlaySession, kind: str, args: dict) -> None:
    """Do one message's work on the model thread and send its one reply (an error keeps the session)."""
    try:
        if kind == "step":
            reply = frame_message(await server.call(session.step, args["action"]), session)
        elif kind == "reset":
            reply = frame_message(await server.call(session.reset, args.get("seed")), session)
        elif kind == "upload":
            reply = frame_message(await server.call(session.upload, args["images"], args.get("actions")), session)
        elif kind == "sampler_steps":
            await server.call(session.set_sampler_steps, args["steps"])
            reply = options_message(session)
        elif kind == "real":
            view = await server.call(session.set_real, args["on"])
            reply = frame_message(view, session) if view is not None else options_message(session)
        else:  # parse_message lets only the types above through
            raise AssertionError(kind)
    except (ValueError, OSError) as e:  # the user's to fix (bad action, image, no dataset, ...)
        reply = error_message(" ".join(str(e).split()))
    except Exception as e:  # a bug: keep the traceback in the server's log, keep the session
        traceback.print_exc(file=sys.stderr)
        reply = error_message(f"internal error ({type(e).__name__}: {e}); see the server's log")
    await ws.send_json(reply)


def create_app(server: PlayServer, allowed_hosts: list[str] | None = None) -> Starlette:
    """The ASGI app over `server`. allowed_hosts: Host header names accepted (None: any)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        server.close()

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)] if allowed_hosts else []
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/rollout", rollout),
            WebSocketRoute("/ws", play_socket),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.play = server
    return app


# ----------------------------------------------------------------------------------------------- serving
def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port) (port 0: any free one). OSError if it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"cannot listen on {host}:{port} ({e.strerror}); choose another --port") from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def uvicorn_server(app: Starlette, max_message_bytes: int) -> Any:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws_max_size=max_message_bytes)
    return uvicorn.Server(config)


def max_message_bytes(server: PlayServer) -> int:
    """Largest websocket message accepted: an upload of K images of the size limit, base64-encoded."""
    return server.models.base.context_length * (MAX_IMAGE_BYTES * 4 // 3 + 1024) + 64 * 1024


def serve(server: PlayServer, app: Starlette, host: str, port: int, announce: Callable[[str], Any]) -> None:
    """Listen on host:port, call `announce(url)`, serve until Ctrl-C / SIGTERM (uvicorn shuts down cleanly)."""
    sock = bind(host, port)
    announce(url_of(sock))
    uvicorn_server(app, max_message_bytes(server)).run(sockets=[sock])


@contextlib.contextmanager
def running(server: PlayServer, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve in a background thread (tests, benchmarks); yields the URL, stops the server on exit."""
    sock = bind(host, port)
    uv = uvicorn_server(app, max_message_bytes(server))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, name="vidworld-play-server", daemon=True)
    thread.start()
    try:
        yield url_of(sock)
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()
