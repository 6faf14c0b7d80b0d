"""The page <-> server websocket messages: JSON text, one object each, `type` says which.

Page -> server (every message gets exactly one reply: a `frame`, an `options`, or an `error`):

    {"type": "step", "action": 1}                      one imagined step (reply: frame)
    {"type": "reset", "seed": 7}                       random real context from the dataset; seed optional
    {"type": "upload", "images": [dataURL, ...], "actions": [0, 1]}   1..K context images (+ K-1 actions)
    {"type": "sampler_steps", "steps": 3}              null: the model's saved setting (reply: options)
    {"type": "real", "on": true}                       show the real env beside the imagined one (reply: frame)

Server -> page: `hello` once (model, actions and their keys, what can be toggled), `frame` (the newest
imagined frame as base64 raw RGB bytes [S, S, 3], the predicted reward / termination, counters, the real
env's frame when shown), `options`, and `error` {"message": ...} for anything it cannot do — after which the
session goes on as before.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from vidworld.play.session import PlaySession, View

# type -> {field: required?}
FIELDS: dict[str, dict[str, bool]] = {
    "step": {"action": True},
    "reset": {"seed": False},
    "upload": {"images": True, "actions": False},
    "sampler_steps": {"steps": True},
    "real": {"on": True},
}


def _int(value: Any, what: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer{' or null' if allow_none else ''}, got {json.dumps(value)[:40]}")
    return value


def parse_message(text: str) -> tuple[str, dict[str, Any]]:
    """A websocket text message -> (type, fields), checked; ValueError naming what is wrong."""
    try:
        msg = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ValueError(f"not JSON: {text[:60]!r}; send an object like {{\"type\": \"step\", \"action\": 0}}") from None
    if not isinstance(msg, dict):
        raise ValueError(f"expected a JSON object with a 'type', got {type(msg).__name__}")
    kind = msg.get("type")
    if kind not in FIELDS:
        raise ValueError(f"unknown message type {kind!r}; expected one of {sorted(FIELDS)}")
    fields = FIELDS[kind]
    unknown = sorted(set(msg) - set(fields) - {"type"})
    if unknown:
        raise ValueError(f"'{kind}' message: unknown field(s) {unknown}; it takes {sorted(fields)}")
    missing = [f for f, required in fields.items() if required and f not in msg]
    if missing:
        raise ValueError(f"'{kind}' message: missing field(s) {missing}")
    args = {k: v for k, v in msg.items() if k != "type"}
    if kind == "step":
        _int(args["action"], "action")
    elif kind == "reset":
        _int(args.get("seed"), "seed", allow_none=True)
    elif kind == "sampler_steps":
        _int(args["steps"], "steps", allow_none=True)
    elif kind == "real" and not isinstance(args["on"], bool):
        raise ValueError(f"'real' message: 'on' must be true or false, got {json.dumps(args['on'])[:40]}")
    elif kind == "upload" and args.get("actions") is not None:
        acts = args["actions"]
        if not isinstance(acts, list):
            raise ValueError("'upload' message: 'actions' must be a list of action ids")
        for a in acts:
            _int(a, "each context action")
    return kind, args


def frame_message(view: View, session: PlaySession) -> dict[str, Any]:
    """A View -> the `frame` message (frames as base64 raw RGB, row-major [S, S, 3])."""
    real = view.real
    return {
        "type": "frame",
        "step": view.step,
        "size": int(view.frame.shape[0]),
        "frame": base64.b64encode(view.frame.tobytes()).decode("ascii"),
        "reward": view.reward,
        "terminated": view.terminated,
        "termination_prob": view.termination_prob,
        "total_reward": view.total_reward,
        "model_ms": round(view.model_ms, 2),
        "source": view.source,
        "real_on": session.real_on,
        "real": None if real is None else {
            "frame": base64.b64encode(real.frame.tobytes()).decode("ascii"),
            "reward": real.reward, "terminated": real.terminated, "total_reward": real.total_reward},
    }


def options_message(session: PlaySession) -> dict[str, Any]:
    return {"type": "options", "sampler_steps": session.sampler_steps, "real_on": session.real_on}


def error_message(message: str) -> dict[str, Any]:
    return {"type": "error", "message": message}
