"""Register the world-model environments with gymnasium (done on `import vidworld.envs`).

    import vidworld.envs
    env = gymnasium.make("vidworld/WorldModel-v0", model="runs/demo/model")                 # WorldModelEnv
    envs = gymnasium.make_vec("vidworld/WorldModel-v0", num_envs=64, model="runs/demo/model")  # batched

Without the import, `gymnasium.make("vidworld.envs:vidworld/WorldModel-v0", ...)` imports it for you.

The truncation horizon (default 200) is set the way each gymnasium entry point expects it: `gymnasium.make`
wraps the env in its TimeLimit (`max_episode_steps=` is TimeLimit's, never the constructor's), so the
single-env creator turns the env's own limit off — otherwise a TimeLimit longer than 200 could never be
reached. `gymnasium.make_vec` passes `max_episode_steps` to the vector env's constructor, which truncates
each sub-env itself (a vector entry point gets no TimeLimit).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

ENV_ID = "vidworld/WorldModel-v0"
DEFAULT_MAX_EPISODE_STEPS = 200


def make_world_model_env(**kwargs: Any) -> gym.Env:
    """Single-env entry point: a WorldModelEnv whose truncation is left to gymnasium's TimeLimit."""
    from vidworld.envs.world_model_env import WorldModelEnv

    kwargs.setdefault("max_episode_steps", None)
    return WorldModelEnv(**kwargs)


# gymnasium.make reads the creator's metadata to validate render modes (and to offer rgb_array_list).
make_world_model_env.metadata = {"render_modes": ["rgb_array"], "render_fps": 15}  # type: ignore[attr-defined]


def register() -> None:
    """Register ENV_ID once (importing this module again, or reloading it, is harmless)."""
    if ENV_ID in gym.registry:
        return
    gym.register(
        id=ENV_ID,
        entry_point="vidworld.envs.registration:make_world_model_env",
        vector_entry_point="vidworld.envs.vector_env:WorldModelVectorEnv",
        max_episode_steps=DEFAULT_MAX_EPISODE_STEPS,
        nondeterministic=False,  # same seed + actions -> same video (the sampler's noise is seeded)
    )


register()
