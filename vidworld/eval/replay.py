"""Ground truth for counterfactual actions: replay the real env from a stored low-dimensional state.

Controllability needs the real future of ONE context under TWO action sequences. A dataset holds only one,
so for envs whose simulator state can be set (classic control: `unwrapped.state`), we put the real env in
the recorded state of the last context frame and step it under any actions, rendering frames exactly as the
collector did (same `PixelObservation` resize).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env


def supports_replay(env_id: str) -> bool:
    """True for envs whose full simulator state is `unwrapped.state` (classic control)."""
    return env_id.split("-")[0] in {"CartPole", "Acrobot", "MountainCar", "MountainCarContinuous", "Pendulum"}


class StateReplay:
    """replay(states [B, d], actions [B, H]) -> real frames uint8 [B, H, 3, S, S] (frame t follows action t)."""

    def __init__(self, env_cfg: PixelEnvConfig):
        if not supports_replay(env_cfg.id):
            raise ValueError(f"state replay needs a classic-control env with a settable state, got {env_cfg.id!r}")
        self.env = make_pixel_env(env_cfg, seed=0)
        self.env.reset(seed=0)

    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        base = self.env.unwrapped
        out = np.empty((actions.shape[0], actions.shape[1], self.env.frame_size, self.env.frame_size, 3), np.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # stepping past a terminal state is what we want here
            for b in range(actions.shape[0]):  # a real simulator steps one env at a time
                base.state = np.asarray(states[b].tolist(), dtype=np.float64)
                if hasattr(base, "steps_beyond_terminated"):
                    base.steps_beyond_terminated = None
                for t in range(actions.shape[1]):
                    base.step(int(actions[b, t]))
                    out[b, t] = self.env._frame()
        return torch.from_numpy(out).permute(0, 1, 4, 2, 3).contiguous()

    def close(self) -> None:
        self.env.close()
