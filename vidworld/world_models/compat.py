"""Does a world model fit this dataset / this real env? Checked before any work, with errors naming both.

A model applied to another env's data or env gives numbers that look fine and mean nothing (a 2-action
model "planning" in a 3-action env; a CartPole model scored on another env's clips of the same action count).
"""

from __future__ import annotations

from typing import Any

from vidworld.protocol import WorldModel


def check_dataset(model: WorldModel, store: Any, what: str = "dataset") -> None:
    """`store`: an EpisodeStore. Same env id (when both record one), frame size and discrete action count."""
    root = getattr(store, "root", "?")
    model_env, data_env = model.meta.get("env_id"), store.manifest.get("env_id")
    if model_env and data_env and model_env != data_env:
        raise ValueError(f"{what} {root} holds {data_env} episodes but the model was trained on {model_env}")
    h, w = store.frame_shape
    if (h, w) != (model.frame_size, model.frame_size):
        raise ValueError(f"{what} {root} has {h}x{w} frames but the model's frame_size is {model.frame_size}")
    space = store.action_space_json
    n = int(space.get("n", -1)) + int(space.get("start", 0)) if space.get("type") == "discrete" else None
    if n is None or n > model.action_spec.n:
        raise ValueError(f"{what} {root} has actions {space}; the model takes {model.action_spec.n} discrete actions")


def check_env(model: WorldModel, env_id: str, action_space: Any, observation_shape: tuple[int, ...]) -> None:
    """A real env (its id, gymnasium action space and observation shape [H, W, 3]) against the model."""
    model_env = model.meta.get("env_id")
    n = getattr(action_space, "n", None)  # only gymnasium's Discrete has n
    if n is None or int(n) != model.action_spec.n:
        raise ValueError(f"env {env_id} has action space {action_space} but the model (trained on {model_env}) "
                         f"takes {model.action_spec.n} discrete actions")
    if tuple(observation_shape[:2]) != (model.frame_size, model.frame_size):
        raise ValueError(f"env {env_id} gives {observation_shape[0]}x{observation_shape[1]} frames but the model's "
                         f"frame_size is {model.frame_size}")
