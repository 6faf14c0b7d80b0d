"""Action spaces as JSON (the manifest's `action_space`), inference for external datasets, and checks."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

from vidworld.data.errors import DatasetError, first_line

_EXPECTED_SPACE = ('expected {"type": "discrete", "n": N} (optional "start") or '
                   '{"type": "box", "shape": [d], "low": [...], "high": [...]}')


def infer_action_space(actions: list[np.ndarray], root: Path) -> dict:
    """The action space of an external dataset, from its action arrays (integers -> discrete, floats -> box)."""
    if not any(a.size for a in actions):
        raise DatasetError(f"{root}: no episode has any action; expected at least one action per episode")
    if all(np.issubdtype(a.dtype, np.integer) for a in actions):
        if any(a.ndim != 1 for a in actions):
            raise DatasetError(f"{root}: integer actions must be 1-D [N]")
        low = min(int(a.min()) for a in actions if a.size)
        if low < 0:
            raise DatasetError(f"{root}: integer actions must be >= 0 (found {low})")
        return {"type": "discrete", "n": max(int(a.max()) for a in actions if a.size) + 1}
    if all(np.issubdtype(a.dtype, np.floating) for a in actions):
        shapes = {a.shape[1:] for a in actions}
        if len(shapes) != 1:
            raise DatasetError(f"{root}: float actions have different shapes {sorted(shapes)}")
        cat = np.concatenate([a.reshape(len(a), -1) for a in actions]).astype(np.float32)
        return {"type": "box", "shape": list(shapes.pop()), "low": cat.min(0).tolist(),
                "high": cat.max(0).tolist()}
    raise DatasetError(f"{root}: actions must all be integers (discrete) or all floats (box)")


def action_space_to_json(space: gym.Space) -> dict:
    """gymnasium Discrete/Box -> {"type": "discrete", "n"[, "start"]} / {"type": "box", shape, low, high}."""
    if isinstance(space, gym.spaces.Discrete):
        out = {"type": "discrete", "n": int(space.n)}
        if int(space.start) != 0:
            out["start"] = int(space.start)
        return out
    if isinstance(space, gym.spaces.Box):
        return {"type": "box", "shape": list(space.shape), "low": space.low.reshape(-1).tolist(),
                "high": space.high.reshape(-1).tolist()}
    raise DatasetError(f"action space {space} is not supported: use Discrete or Box")


def action_space_from_json(d: dict) -> gym.Space:
    """Inverse of action_space_to_json (DatasetError for anything else)."""
    if not isinstance(d, dict):
        raise DatasetError(f"bad action_space {d!r}: {_EXPECTED_SPACE}")
    def is_int(v) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    try:
        if d["type"] == "discrete":
            if not (is_int(d["n"]) and is_int(d.get("start", 0))):
                raise TypeError("n and start must be integers")
            return gym.spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
        if d["type"] == "box":
            if not all(is_int(k) for k in d["shape"]):
                raise TypeError("shape must be a list of integers")
            shape = tuple(d["shape"])
            low, high = (np.asarray(d[k], np.float32).reshape(shape) for k in ("low", "high"))
            return gym.spaces.Box(low, high, shape, np.float32)
    except (KeyError, TypeError, ValueError, AssertionError) as e:
        raise DatasetError(f"bad action_space {d!r} ({first_line(e)}); {_EXPECTED_SPACE}") from None
    raise DatasetError(f"bad action_space {d!r}: {_EXPECTED_SPACE}")


def describe_space(space: dict) -> str:
    """What actions of a JSON action space look like, for messages: 'integers in [0, 2) (discrete n=2)'."""
    if space["type"] == "discrete":
        lo = int(space.get("start", 0))
        return f"integers in [{lo}, {lo + int(space['n'])}) (discrete n={space['n']})"
    return f"finite floats [N, {', '.join(map(str, space['shape']))}] (box shape {list(space['shape'])})"


def check_actions(actions: np.ndarray, space: dict, where: str = "actions",
                  source: str = "the dataset") -> np.ndarray:
    """Actions as stored: int64 [N] inside the discrete range, or float32 [N, *shape] for a box.

    DatasetError otherwise, one line: `where` (the file) has action <value>, outside the action space of
    `source` (the manifest), and the expected range. An action outside the space would otherwise reach a
    model's embedding and fail as an IndexError deep inside training."""
    actions = np.asarray(actions)
    expected = f"the action space in {source} expects {describe_space(space)}"
    if space["type"] == "discrete":
        if actions.ndim != 1 or not (np.issubdtype(actions.dtype, np.integer) or actions.dtype == bool):
            raise DatasetError(f"{where}: actions are {actions.dtype} {list(actions.shape)}; {expected}, shape [N]")
        lo, hi = int(space.get("start", 0)), int(space.get("start", 0)) + int(space["n"])
        outside = (actions < lo) | (actions >= hi)
        if outside.any():
            k = int(np.flatnonzero(outside)[0])
            raise DatasetError(f"{where}: action {actions[k]} (step {k}; actions span {actions.min()}.."
                               f"{actions.max()}) is outside {expected}")
        return actions.astype(np.int64)
    shape = tuple(space["shape"])
    if actions.shape[1:] != shape or actions.ndim < 1 or not np.issubdtype(actions.dtype, np.number):
        raise DatasetError(f"{where}: actions are {actions.dtype} {list(actions.shape)}; {expected}")
    actions = actions.astype(np.float32)
    if not np.isfinite(actions).all():
        raise DatasetError(f"{where}: actions contain NaN or inf; {expected}")
    return actions
