"""WorldModelVectorEnv: N imagined environments stepped by ONE batched `model.step` call per vector step.

    envs = gymnasium.make_vec("vidworld/WorldModel-v0", num_envs=64, model="runs/demo/model")
    obs, info = envs.reset(seed=0)                         # uint8 [N, S, S, 3]
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())

Autoreset: gymnasium's NEXT_STEP mode (`metadata["autoreset_mode"]`, the gymnasium default that its vector
wrappers expect). When sub-env i returns terminated or truncated at step t, step t+1 ignores its action and
resets it instead: obs[i] is the new episode's first frame (a real context frame), reward 0,
terminated = truncated = False, info["_termination_prob"][i] False. Only the live sub-envs go through the
model at that step (still one call); the resetting ones get a new context from the dataset.

Truncation is per sub-env: each counts its own steps since its last reset and truncates at max_episode_steps.

Determinism: contexts are drawn with `self.np_random` and the sampler noise with one torch.Generator seeded
from it at reset, so `reset(seed=s)` plus the same action sequence gives the same videos for the whole batch
(one generator serves the batch, so sub-env i's noise also depends on which others are live).

Torch-native path for learners (no numpy, tensors stay on the model's device):

    obs = envs.reset_tensor(seed=0)                           # [N, 3, S, S] uint8 or [N, c, h, w] float32
    obs, reward, terminated, truncated = envs.step_tensor(actions)   # actions long [N]

Pixels are channels-first there (torch convention; `step` gives [N, S, S, 3] like real env observations).
`last_info` holds the step's info (termination_prob [N]) for either path.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from torch import Tensor

from vidworld.envs.world_model_env import (
    ContextSource,
    ObsType,
    context_tensors,
    observation_of,
    resolve_model,
    observation_space,
    to_numpy,
    unpack_context,
)
from vidworld.protocol import PixelDecoder, index_state


def put_rows(state: Any, idx: Tensor, rows: Any) -> Any:
    """A copy of `state` whose batch rows `idx` [m] are replaced by `rows` (a state of batch m)."""
    fields = [f.name for f in dataclasses.fields(state) if isinstance(getattr(state, f.name), Tensor)]
    return dataclasses.replace(
        state, **{k: getattr(state, k).index_copy(0, idx, getattr(rows, k).to(getattr(state, k).dtype)) for k in fields}
    )


class WorldModelVectorEnv(VectorEnv):
    """num_envs imagined envs over one world model; arguments as WorldModelEnv (see the module docstring)."""

    metadata = {  # noqa: RUF012 (gymnasium's API: a class-level dict)
        "render_modes": ["rgb_array"], "render_fps": 15, "autoreset_mode": AutoresetMode.NEXT_STEP
    }

    def __init__(self, num_envs: int, model: Any, dataset: str | os.PathLike | None = None,
                 obs_type: ObsType = "pixels", max_episode_steps: int | None = 200, render_mode: str | None = None,
                 device: str | torch.device = "cpu", split: Literal["all", "train", "val"] = "all"):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        self.model = resolve_model(model, device)
        self.num_envs = num_envs
        self.obs_type: ObsType = obs_type
        self.single_observation_space = observation_space(self.model, obs_type)
        self.single_action_space = gym.spaces.Discrete(self.model.action_spec.n)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        meta = self.model.meta
        self.metadata = {**self.metadata, "render_fps": meta.get("fps") or 15}
        self.contexts = ContextSource(self.model, dataset, split)
        self._device = self.model.device
        self._state: Any = None
        self._frames: Tensor | None = None  # uint8 [N, 3, S, S] current frames (pixel observations only)
        self._generator: torch.Generator | None = None
        self._steps = torch.zeros(num_envs, dtype=torch.long, device=self._device)
        self._autoreset = torch.zeros(num_envs, dtype=torch.bool, device=self._device)
        self.last_info: dict[str, Any] = {}

    @property
    def state(self) -> Any:
        """The batched world-model state (batch num_envs)."""
        return self._state

    # ------------------------------------------------------------------------------------------ reset
    def reset_tensor(self, *, seed: int | None = None, options: dict | None = None) -> Tensor:
        """Reset every sub-env; returns observations as a tensor (see module docstring).

        seed: an int seeds `np_random` (contexts and sampler noise); None continues the current stream.
        options: {"context": (frames uint8 [N, K, S, S, 3] or [N, K, 3, S, S], actions int [N, K-1])} or None
        (then N random dataset windows).
        """
        super().reset(seed=seed)
        ctx = unpack_context(options)
        if ctx is not None:
            frames, actions = context_tensors(*ctx, self.model, lead=(self.num_envs,))
            self.last_info = {}
        else:
            frames, actions, where = self.contexts.sample(self.np_random, self.num_envs)
            self.last_info = self._where_info(where, np.ones(self.num_envs, bool))
        self._generator = torch.Generator(device=self._device).manual_seed(int(self.np_random.integers(2**63)))
        self._state = self.model.init(frames.to(self._device), actions.to(self._device))
        self._frames = frames[:, -1].to(self._device) if self.obs_type == "pixels" else None
        self._steps.zero_()
        self._autoreset.zero_()
        return self._observation()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        obs = self.reset_tensor(seed=seed, options=options)
        return self._to_numpy_obs(obs), dict(self.last_info)

    # ------------------------------------------------------------------------------------------- step
    def step_tensor(self, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """actions long [N] -> (obs [N, 3, S, S] uint8 or [N, c, h, w] float32, reward float32 [N],
        terminated bool [N], truncated bool [N]), all on the model's device, fresh tensors (safe to keep).
        NEXT_STEP autoreset as in the module docstring."""
        if self._state is None:
            raise RuntimeError("WorldModelVectorEnv.step() called before reset(): call reset() first")
        actions = self._check_actions(actions)
        n, dev = self.num_envs, self._device
        reward = torch.zeros(n, dtype=torch.float32, device=dev)
        terminated = torch.zeros(n, dtype=torch.bool, device=dev)
        prob = torch.zeros(n, dtype=torch.float32, device=dev)
        resetting = self._autoreset.clone()
        live = (~resetting).nonzero().squeeze(1)
        if live.numel():
            # The one batched model call of this step: every live sub-env at once.
            all_live = live.numel() == n
            sub = self._state if all_live else index_state(self._state, live)
            new, out = self.model.step(sub, actions[live], generator=self._generator)
            self._state = new if all_live else put_rows(self._state, live, new)
            reward[live] = out.reward.float()
            terminated[live] = out.terminated.bool()
            prob[live] = out.termination_prob.float()
            if self._frames is not None:
                self._frames = self._frames.index_copy(0, live, self.model.decode(new).to(self._frames.dtype))
            self._steps[live] += 1
        where = None
        if resetting.any():
            ridx = resetting.nonzero().squeeze(1)
            frames, ctx_actions, where = self.contexts.sample(self.np_random, ridx.numel())
            fresh = self.model.init(frames.to(dev), ctx_actions.to(dev))
            self._state = put_rows(self._state, ridx, fresh)
            if self._frames is not None:
                self._frames = self._frames.index_copy(0, ridx, frames[:, -1].to(dev))
            self._steps[ridx] = 0
        truncated = torch.zeros(n, dtype=torch.bool, device=dev)
        if self.max_episode_steps is not None:
            truncated = ~resetting & (self._steps >= self.max_episode_steps)
        self._autoreset = terminated | truncated
        live_np = to_numpy(~resetting)
        self.last_info = {"termination_prob": to_numpy(prob), "_termination_prob": live_np}
        if where is not None:
            full = np.zeros((n, 2), np.int64)
            full[to_numpy(resetting)] = where
            self.last_info.update(self._where_info(full, to_numpy(resetting)))
        return self._observation(), reward, terminated, truncated

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """actions int [N] (numpy or list) -> numpy (obs [N, S, S, 3] uint8 or [N, c, h, w] float32,
        reward float32 [N], terminated bool [N], truncated bool [N], info)."""
        obs, reward, terminated, truncated = self.step_tensor(actions)
        return self._to_numpy_obs(obs), to_numpy(reward), to_numpy(terminated), to_numpy(truncated), dict(self.last_info)

    def render(self) -> tuple[np.ndarray, ...]:
        """The current frames, one uint8 [S, S, 3] per sub-env (decoded from the state for latent obs)."""
        if self._state is None:
            raise RuntimeError("WorldModelVectorEnv.render() called before reset(): call reset() first")
        if self._frames is None and not isinstance(self.model, PixelDecoder):
            raise ValueError(f"render() needs a model that decodes frames; {type(self.model).__name__} does not")
        frames = self._frames if self._frames is not None else self.model.decode(self._state)
        return tuple(to_numpy(f.permute(1, 2, 0)) for f in frames)

    # --------------------------------------------------------------------------------------- helpers
    def _observation(self) -> Tensor:
        if self.obs_type == "pixels":
            return self._frames.clone()
        return observation_of(self.model, self._state, self.obs_type).clone()

    def _to_numpy_obs(self, obs: Tensor) -> np.ndarray:
        return to_numpy(obs.permute(0, 2, 3, 1) if self.obs_type == "pixels" else obs)

    def _check_actions(self, actions: Any) -> Tensor:
        a = actions.detach() if isinstance(actions, Tensor) else torch.from_numpy(np.array(actions))
        n = self.single_action_space.n
        if a.dtype.is_floating_point or a.dtype.is_complex or a.dtype == torch.bool or tuple(a.shape) != (self.num_envs,):
            raise ValueError(f"actions must be integer ids of shape [{self.num_envs}] in the action space "
                             f"{self.action_space}, got {a.dtype} {tuple(a.shape)}")
        if int(a.min()) < 0 or int(a.max()) >= n:
            bad = int(((a < 0) | (a >= n)).nonzero()[0, 0])
            raise ValueError(f"action {int(a[bad])} of sub-env {bad} is out of range: the action space is "
                             f"{self.action_space} (ids 0..{n - 1})")
        return a.to(self._device).long()

    @staticmethod
    def _where_info(where: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        return {"context_episode": where[:, 0].copy(), "_context_episode": mask.copy(),
                "context_start": where[:, 1].copy(), "_context_start": mask.copy()}
