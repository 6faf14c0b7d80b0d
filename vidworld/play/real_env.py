"""The real env beside the imagined one: replayed from the context's recorded state under the same actions.

Only envs whose whole simulator state is settable (`vidworld.eval.replay.supports_replay`: classic control,
`unwrapped.state`) and datasets that recorded that state (`info["state"]`, saved per frame by
`vidworld collect`) can be replayed; `replay_unavailable` says in one line why a context cannot. Frames are
rendered as the collector rendered them (same `PixelEnvConfig`: env id, frame size, frame skip, env kwargs;
same area-averaged resize), so the two pictures are comparable pixel for pixel at the start.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env, resize_frame
from vidworld.eval.replay import simulator_state, supports_replay


def replay_unavailable(env_id: str | None, state: np.ndarray | None) -> str | None:
    """None if a context from env `env_id` with recorded `state` can be replayed, else the reason."""
    if state is None:
        return "this context has no recorded simulator state (uploaded images, or a dataset without states)"
    if not env_id or not supports_replay(env_id):
        return (f"the real env {env_id or '(unknown)'} cannot be put into a recorded state "
                "(only classic-control envs can)")
    return None


def env_config(env_id: str, frame_size: int, collect_meta: dict[str, Any] | None) -> PixelEnvConfig:
    """The PixelEnvConfig the dataset was collected with (its manifest's meta["collect"]["env"])."""
    collected = ((collect_meta or {}).get("env")) or {}
    return PixelEnvConfig(id=env_id, frame_size=frame_size, frame_skip=int(collected.get("frame_skip", 1)),
                          env_kwargs=dict(collected.get("env_kwargs") or {}))


class RealMirror:
    """The real env, set to a recorded state; `step(action)` -> (frame uint8 [S, S, 3], reward, terminated).

    It keeps stepping past a terminal state (the imagined env may not have ended; the page shows both), with
    gymnasium's "step after terminated" warning silenced.
    """

    def __init__(self, cfg: PixelEnvConfig, state: np.ndarray):
        reason = replay_unavailable(cfg.id, state)
        if reason is not None:
            raise ValueError(f"cannot replay the real env: {reason}")
        self.cfg = cfg
        self.env = make_pixel_env(cfg, seed=0)
        self.env.reset(seed=0)
        base = self.env.unwrapped
        base.state = simulator_state(cfg.id, state)  # recorded obs -> the simulator's own state (e.g. Acrobot)
        if hasattr(base, "steps_beyond_terminated"):  # CartPole: forget the reset's episode bookkeeping
            base.steps_beyond_terminated = None
        self.terminated = False

    def frame(self) -> np.ndarray:
        """The current real frame, uint8 [S, S, 3]."""
        return resize_frame(np.asarray(self.env.render(), dtype=np.uint8), self.cfg.frame_size)

    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        total = 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(self.cfg.frame_skip):  # as the collector's PixelObservation wrapper skips
                _, reward, terminated, _, _ = self.env.unwrapped.step(int(action))
                total += float(reward)
                if terminated:
                    break
        self.terminated = self.terminated or bool(terminated)
        return self.frame(), total, bool(terminated)

    def close(self) -> None:
        self.env.close()
