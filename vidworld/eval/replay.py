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


def _acrobot(obs: np.ndarray) -> np.ndarray:
    # observation [cos t1, sin t1, cos t2, sin t2, dt1, dt2] -> simulator state [t1, t2, dt1, dt2]
    return np.array([np.arctan2(obs[1], obs[0]), np.arctan2(obs[3], obs[2]), obs[4], obs[5]])


# env family -> (size of the recorded state, recorded state -> `unwrapped.state`). The recorded state is the
# env's observation (`PixelObservation`'s info["state"]); only some envs observe their whole state directly.
# Discrete-action envs only: replay steps with integer actions. (Pendulum and MountainCarContinuous were
# listed before this table: their continuous actions cannot be replayed, and Acrobot's 6 observed numbers
# were set as its 4-number state, which crashed every eval-wm on an Acrobot dataset.)
_SIMULATOR_STATE = {
    "CartPole": (4, lambda obs: obs),
    "MountainCar": (2, lambda obs: obs),
    "Acrobot": (6, _acrobot),
}


def _family(env_id: str) -> str:
    return env_id.split("-")[0] if isinstance(env_id, str) else ""


def supports_replay(env_id: str) -> bool:
    """True for envs whose whole simulator state (`unwrapped.state`) follows from the recorded state."""
    return _family(env_id) in _SIMULATOR_STATE


def simulator_state(env_id: str, recorded: np.ndarray) -> np.ndarray:
    """The recorded state of a frame (float [d], `info["state"]`) -> `unwrapped.state` of env `env_id`;
    ValueError when its size does not fit (a dataset of another env, or recorded differently)."""
    dim, convert = _SIMULATOR_STATE[_family(env_id)]
    recorded = np.asarray(recorded, dtype=np.float64).reshape(-1)
    if recorded.shape != (dim,):
        raise ValueError(f"a recorded state of {recorded.shape[0]} numbers does not fit {env_id}, which records "
                         f"{dim}: were these episodes collected from {env_id}?")
    return np.asarray(convert(recorded), dtype=np.float64)


class StateReplay:
    """replay(states [B, d], actions [B, H]) -> real frames uint8 [B, H, 3, S, S] (frame t follows action t)."""

    def __init__(self, env_cfg: PixelEnvConfig):
        if not supports_replay(env_cfg.id):
            raise ValueError(f"state replay needs a classic-control env with a settable state "
                             f"({sorted(_SIMULATOR_STATE)}), got {env_cfg.id!r}")
        self.env_id = env_cfg.id
        self.env = make_pixel_env(env_cfg, seed=0)
        self.num_actions = int(self.env.action_space.n)  # discrete: every replayable env is (_SIMULATOR_STATE)
        self.env.reset(seed=0)

    def __call__(self, states: Tensor, actions: Tensor) -> Tensor:
        base = self.env.unwrapped
        if actions.numel() and not (0 <= int(actions.min()) and int(actions.max()) < self.num_actions):
            raise ValueError(f"replaying {self.env_id}: actions span {int(actions.min())}..{int(actions.max())}, "
                             f"the env takes 0..{self.num_actions - 1}")
        out = np.empty((actions.shape[0], actions.shape[1], self.env.frame_size, self.env.frame_size, 3), np.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # stepping past a terminal state is what we want here
            for b in range(actions.shape[0]):  # a real simulator steps one env at a time
                base.state = simulator_state(self.env_id, np.asarray(states[b].tolist()))
                if hasattr(base, "steps_beyond_terminated"):
                    base.steps_beyond_terminated = None
                for t in range(actions.shape[1]):
                    base.step(int(actions[b, t]))
                    out[b, t] = self.env._frame()
        return torch.from_numpy(out).permute(0, 1, 4, 2, 3).contiguous()

    def close(self) -> None:
        self.env.close()
