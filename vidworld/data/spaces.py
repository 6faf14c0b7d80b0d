"""Action spaces as JSON (the manifest's `action_space`), inference for external datasets, and checks."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

from vidworld.data.errors import DatasetError


def infer_action_space(actions: list[np.ndarray], root: Path) -> dict:
    """The action space of an external dataset, from its action arrays (integers -> discrete, floats -> box)."""
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
    try:
        if d["type"] == "discrete":
            return gym.spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
        if d["type"] == "box":
            shape = tuple(d["shape"])
            low, high = (np.asarray(d[k], np.float32).reshape(shape) for k in ("low", "high"))
            return gym.spaces.Box(low, high, shape, np.float32)
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"bad action_space {d!r}: {e}") from None
    raise DatasetError(f"bad action_space {d!r}: type must be 'discrete' or 'box'")


def check_actions(actions: np.ndarray, space: dict) -> np.ndarray:
    """Actions as stored: int64 [N] inside the discrete range, or float32 [N, *shape] for a box."""
    actions = np.asarray(actions)
    if space["type"] == "discrete":
        if actions.ndim != 1 or not (np.issubdtype(actions.dtype, np.integer) or actions.dtype == bool):
            raise DatasetError(f"discrete actions must be integers [N], got {actions.dtype} {actions.shape}")
        lo = int(space.get("start", 0))
        if actions.size and (actions.min() < lo or actions.max() >= lo + space["n"]):
            raise DatasetError(f"actions must lie in [{lo}, {lo + space['n']}), found "
                               f"{actions.min()}..{actions.max()}")
        return actions.astype(np.int64)
    shape = tuple(space["shape"])
    if actions.shape[1:] != shape:
        raise DatasetError(f"box actions must be [N, *{list(shape)}], got {actions.shape}")
    return actions.astype(np.float32)
