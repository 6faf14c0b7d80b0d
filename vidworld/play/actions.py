"""What each action id of a world model means in its env, and the key that takes it on the page.

Meanings come from the env the model was trained on (`model.meta["env_id"]`, else its dataset's manifest):
classic control from a table of the documented action ids (gymnasium's docs; the envs do not name their
actions in code), ALE from the emulator itself (`get_action_meanings()`, e.g. NOOP, FIRE, RIGHT, ...),
MiniGrid from its `Actions` enum. Anything else (or a model whose action count differs from the env's) falls
back to "action i".

Keys: each action gets a digit/letter (1..9, 0, q, w, ...) in id order; an action whose meaning is a single
direction or FIRE/NOOP also gets the matching arrow key / Space / period (MiniGrid's "forward" is ArrowUp).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

# gymnasium's documented action ids (classic_control/*.py docstrings).
CLASSIC_CONTROL = {
    "CartPole": ["LEFT", "RIGHT"],
    "MountainCar": ["LEFT", "NOOP", "RIGHT"],
    "Acrobot": ["TORQUE -1", "TORQUE 0", "TORQUE +1"],
}
ALIASES = {"LEFT": "ArrowLeft", "RIGHT": "ArrowRight", "UP": "ArrowUp", "DOWN": "ArrowDown", "FORWARD": "ArrowUp",
           "FIRE": " ", "NOOP": "."}
KEYS = "1234567890qwertyuiopasdfghjklzxcvbm"  # the page binds Escape to reset: not in this list


@dataclass(frozen=True)
class ActionBinding:
    """Action `id`, its `meaning` and the `keys` (KeyboardEvent.key values) that take it."""

    id: int
    meaning: str
    keys: tuple[str, ...]


def env_action_meanings(env_id: str | None, n: int) -> list[str] | None:
    """The env's names for actions 0..n-1, or None when unknown or when the env's count is not n."""
    if not env_id:
        return None
    family = env_id.split("/")[-1].split("-")[0]
    names: list[str] | None = CLASSIC_CONTROL.get(family)
    if names is None and env_id.startswith("MiniGrid"):
        try:
            from minigrid.core.actions import Actions

            names = [a.name for a in Actions]
        except ImportError:
            names = None
    if names is None and env_id.startswith("ALE/"):
        names = _ale_meanings(env_id)
    if names is None or len(names) != n:
        return None
    return list(names)


def _ale_meanings(env_id: str) -> list[str] | None:
    from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = make_pixel_env(PixelEnvConfig(id=env_id))
    except (ValueError, ImportError):  # an unknown id, or ale_py missing: meanings are a nicety
        return None
    try:
        return [str(m) for m in env.unwrapped.get_action_meanings()]
    finally:
        env.close()


def action_bindings(env_id: str | None, n: int) -> list[ActionBinding]:
    """One binding per action id 0..n-1 (see the module docstring)."""
    meanings = env_action_meanings(env_id, n) or [f"action {i}" for i in range(n)]
    out, taken = [], set()
    for i, meaning in enumerate(meanings):
        keys = []
        alias = ALIASES.get(meaning.upper())
        if alias is not None and alias not in taken:
            keys.append(alias)
        if i < len(KEYS):
            keys.append(KEYS[i])
        taken.update(keys)
        out.append(ActionBinding(i, meaning, tuple(keys)))
    return out
