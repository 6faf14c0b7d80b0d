"""Acting policies for the real env (the `Policy` protocol of rl/evaluate.py): the learned actor on the
world model's features, and the MPC planner. Both keep the last K real frames (padding an episode start by
repeating its first frame with action 0, as training pads) and build the model state from them."""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from vidworld.protocol import Filtering, WorldModel


class ContextTracker:
    """The model state of the real history: `init` on the padded first frame, then `observe` per real step
    (Filtering models: one frame encoded per step) or `init` on the last K frames (others)."""

    def __init__(self, model: WorldModel):
        self.model, self.K = model, model.context_length
        self.frames: deque = deque(maxlen=self.K)
        self.actions: deque = deque(maxlen=max(self.K - 1, 1))
        self.state = None

    def reset(self, obs: np.ndarray) -> None:
        frame = torch.from_numpy(np.array(obs, copy=True)).permute(2, 0, 1)
        self.frames = deque([frame] * self.K, maxlen=self.K)
        self.actions = deque([0] * (self.K - 1), maxlen=max(self.K - 1, 1))
        self.state = self._init()

    def _init(self):
        dev = self.model.device
        frames = torch.stack(list(self.frames))[None].to(dev)
        actions = torch.tensor(list(self.actions)[: self.K - 1], dtype=torch.long, device=dev)[None]
        return self.model.init(frames, actions)

    def step(self, action: int, obs: np.ndarray) -> None:
        frame = torch.from_numpy(np.array(obs, copy=True)).permute(2, 0, 1)
        self.frames.append(frame)
        if self.K > 1:
            self.actions.append(int(action))
        if isinstance(self.model, Filtering):
            dev = self.model.device
            self.state = self.model.observe(self.state, torch.tensor([int(action)], device=dev), frame[None].to(dev))
        else:
            self.state = self._init()


class ActorPolicy:
    """The actor-critic's actor on `model.features` of the real history. greedy: the most likely action
    (evaluation); else a sample drawn from a generator seeded with the episode's seed (collection: the same
    episode number always gets the same noise, which makes a resumed online loop collect the same data)."""

    def __init__(self, model: WorldModel, agent, greedy: bool):
        self.tracker, self.agent, self.greedy = ContextTracker(model), agent, greedy
        self.generator: torch.Generator | None = None
        self._last: int | None = None

    def reset(self, obs: np.ndarray, seed: int) -> None:
        self.tracker.reset(obs)
        self.generator = None if self.greedy else torch.Generator(device=self.agent.device).manual_seed(seed)
        self._last = None

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> int:
        if self._last is not None:
            self.tracker.step(self._last, obs)
        feats = self.tracker.model.features(self.tracker.state)
        self._last = int(self.agent.act(feats, greedy=self.greedy, generator=self.generator)[0])
        return self._last


class PlannerPolicy:
    """The MPC agent (planning/agent.py) behind the harness's Policy protocol."""

    def __init__(self, model: WorldModel, planner, precision: str = "auto"):
        self.model, self.planner, self.precision = model, planner, precision
        self.agent = None
        self.generator: torch.Generator | None = None

    def reset(self, obs: np.ndarray, seed: int) -> None:
        from vidworld.planning.agent import MPCAgent

        self.agent = MPCAgent(self.model, self.planner)
        self.agent.reset(obs.transpose(2, 0, 1))
        self.generator = torch.Generator(device=self.model.device).manual_seed(seed)

    def act(self, obs: np.ndarray) -> int:
        from vidworld.precision import inference_autocast

        with inference_autocast(self.model.device, self.precision):
            return int(self.agent.act(obs.transpose(2, 0, 1), generator=self.generator))
