"""Test-only world models that implement the protocol exactly, with known dynamics.

* ToyCartPole: gymnasium's CartPole-v1 physics (Euler, same constants), batched in torch float64. Its
  "frames" carry the exact physics state as the raw bytes of 4 float64 in row 0 of channel 0 (a lossless
  test codec, NOT a vision model) plus a small drawing of cart and pole, so `init(frames)` recovers the
  true state and a planner can be tested end to end in the real env through pixels.
* RiskyChain: action 0 pays 0.5 surely, action 1 pays 0.5 +- 1 drawn from the generator (same mean).
* PointMass: 1-D continuous double integrator; reward -|position - target|.
* ScriptedChain: reward 1 iff the action at step t equals a fixed target sequence (known optimum).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vidworld.protocol import ActionSpec, StepOut

FRAME_SHAPE = (3, 16, 32)  # row 0 of channel 0 holds 4 float64 = 32 bytes


class ToyBase:
    """What protocol v2 asks of every model beyond init/step: device, meta, frame_size, and `features`
    (here: the state's tensor fields, flattened; `feature_dim` is set per model)."""

    device = torch.device("cpu")
    frame_size = 8
    feature_dim = 0

    def __init__(self) -> None:
        self.meta: dict = {}

    def features(self, state) -> Tensor:
        fields = [getattr(state, f.name) for f in dataclasses.fields(state)]
        return torch.cat([t.float().reshape(t.shape[0], -1) for t in fields if isinstance(t, Tensor)], 1)

    def decode_from(self, state, latents: Tensor) -> Tensor:
        return self.decode(latents)

    def save_pretrained(self, path) -> None:
        raise NotImplementedError(f"{type(self).__name__} is a test-only model with no saved form")


@dataclass(frozen=True)
class CartPoleState:
    phys: Tensor  # [B, 4] float64: x, x_dot, theta, theta_dot


class ToyCartPole(ToyBase):
    """CartPole-v1 dynamics behind the world-model protocol (reward 1 per step, termination as gymnasium)."""

    action_spec = ActionSpec(kind="discrete", n=2)
    context_length = 2
    feature_dim = 4
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    theta_threshold = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def __init__(self) -> None:
        super().__init__()
        self.step_calls = 0

    # ----- frame codec (test-only) -----
    @staticmethod
    def encode(phys: Tensor) -> Tensor:
        """[B, 4] float64 -> uint8 frames [B, 3, 16, 32] (exact state bytes + a drawing)."""
        phys = phys.to(torch.float64)
        B = phys.shape[0]
        frames = torch.zeros((B, *FRAME_SHAPE), dtype=torch.uint8)
        raw = np.ascontiguousarray(phys.numpy()).view(np.uint8).reshape(B, 32)
        frames[:, 0, 0, :] = torch.from_numpy(raw.copy())
        _, H, W = FRAME_SHAPE
        col = ((phys[:, 0] / 4.8 + 0.5) * (W - 1)).round().clamp(0, W - 1).long()
        frames[torch.arange(B), 1, H - 2, col] = 255  # cart
        for k in range(1, 8):  # pole pixels, leaning with theta
            c = (col.double() + k * torch.sin(phys[:, 2])).round().clamp(0, W - 1).long()
            frames[torch.arange(B), 2, H - 2 - k, c] = 255
        return frames

    @staticmethod
    def read(frames: Tensor) -> Tensor:
        """uint8 [B, 3, 16, 32] -> [B, 4] float64 state (inverse of `encode`)."""
        raw = frames[:, 0, 0, :].contiguous().numpy()
        return torch.from_numpy(raw.view(np.float64).reshape(-1, 4).copy())

    # ----- protocol -----
    def from_physics(self, phys) -> CartPoleState:
        """Build a state from gymnasium's `env.unwrapped.state` ([4] or [B, 4])."""
        return CartPoleState(torch.as_tensor(np.asarray(phys), dtype=torch.float64).reshape(-1, 4))

    def init(self, context_frames: Tensor, context_actions: Tensor) -> CartPoleState:
        B, K = context_frames.shape[:2]
        assert tuple(context_frames.shape[2:]) == FRAME_SHAPE and K == self.context_length
        assert tuple(context_actions.shape) == (B, K - 1), "protocol: K frames come with K-1 actions"
        return CartPoleState(self.read(context_frames[:, -1]))

    def step(self, state: CartPoleState, actions: Tensor, generator: torch.Generator | None = None):
        self.step_calls += 1
        actions = self.action_spec.check(actions, state.phys.shape[0])
        x, x_dot, theta, theta_dot = state.phys.unbind(-1)
        force = torch.where(actions == 1, self.force_mag, -self.force_mag).double()
        cos, sin = torch.cos(theta), torch.sin(theta)
        total_mass = self.masscart + self.masspole
        pml = self.masspole * self.length
        temp = (force + pml * theta_dot**2 * sin) / total_mass
        thetaacc = (self.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * cos**2 / total_mass)
        )
        xacc = temp - pml * thetaacc * cos / total_mass
        phys = torch.stack(
            [
                x + self.tau * x_dot,
                x_dot + self.tau * xacc,
                theta + self.tau * theta_dot,
                theta_dot + self.tau * thetaacc,
            ],
            -1,
        )
        term = (phys[:, 0].abs() > self.x_threshold) | (phys[:, 2].abs() > self.theta_threshold)
        B = phys.shape[0]
        return CartPoleState(phys), StepOut(
            latent=phys, reward=torch.ones(B), terminated=term, termination_prob=term.float()
        )

    def decode(self, state_or_latents) -> Tensor:
        phys = state_or_latents.phys if isinstance(state_or_latents, CartPoleState) else state_or_latents
        return self.encode(phys)


@dataclass(frozen=True)
class CounterState:
    t: Tensor  # [B] long, steps taken
    value: Tensor  # [B] float32, last reward (for decode)


class RiskyChain(ToyBase):
    """Action 0: reward 0.5. Action 1: reward 0.5 + (+1 or -1 with prob 1/2, from the generator).

    Same expected return for every plan; only the spread across generator noise differs.
    """

    action_spec = ActionSpec(kind="discrete", n=2)
    context_length = 1
    feature_dim = 2

    def init(self, context_frames: Tensor, context_actions: Tensor) -> CounterState:
        B = context_frames.shape[0]
        return CounterState(torch.zeros(B, dtype=torch.long), torch.zeros(B))

    def step(self, state: CounterState, actions: Tensor, generator: torch.Generator | None = None):
        B = actions.shape[0]
        coin = torch.randint(0, 2, (B,), generator=generator).float() * 2 - 1
        reward = 0.5 + (actions == 1).float() * coin
        return CounterState(state.t + 1, reward), StepOut(
            latent=reward[:, None],
            reward=reward,
            terminated=torch.zeros(B, dtype=torch.bool),
            termination_prob=torch.zeros(B),
        )

    def decode(self, state_or_latents) -> Tensor:
        B = (
            state_or_latents.t.shape[0]
            if isinstance(state_or_latents, CounterState)
            else len(state_or_latents)
        )
        return torch.zeros((B, 3, 8, 8), dtype=torch.uint8)


class ScriptedChain(ToyBase):
    """Reward 1 iff action at absolute step t equals target[t % len(target)] (n actions, known optimum)."""

    context_length = 1
    feature_dim = 2

    def __init__(self, target: list[int], n: int = 3):
        super().__init__()
        self.target = torch.tensor(target)
        self.action_spec = ActionSpec(kind="discrete", n=n)

    def init(self, context_frames: Tensor, context_actions: Tensor) -> CounterState:
        B = context_frames.shape[0]
        return CounterState(torch.zeros(B, dtype=torch.long), torch.zeros(B))

    def at(self, t: int) -> CounterState:
        return CounterState(torch.tensor([t]), torch.zeros(1))

    def step(self, state: CounterState, actions: Tensor, generator: torch.Generator | None = None):
        B = actions.shape[0]
        reward = (actions == self.target[state.t % len(self.target)]).float()
        return CounterState(state.t + 1, reward), StepOut(
            latent=state.t[:, None].float(),
            reward=reward,
            terminated=torch.zeros(B, dtype=torch.bool),
            termination_prob=torch.zeros(B),
        )


@dataclass(frozen=True)
class PointState:
    pv: Tensor  # [B, 2] position, velocity


class PointMass(ToyBase):
    """Continuous 1-D point mass: v <- 0.9 v + 0.1 a, x <- x + v; a in [-1, 1]; reward -|x - target|."""

    action_spec = ActionSpec(kind="box", shape=(1,), low=-1.0, high=1.0)
    context_length = 1
    feature_dim = 2

    def __init__(self, target: float = 1.0):
        super().__init__()
        self.target = target

    def at(self, x: float, v: float = 0.0) -> PointState:
        return PointState(torch.tensor([[x, v]]))

    def init(self, context_frames: Tensor, context_actions: Tensor) -> PointState:
        return PointState(torch.zeros(context_frames.shape[0], 2))

    def step(self, state: PointState, actions: Tensor, generator: torch.Generator | None = None):
        actions = self.action_spec.check(actions)
        assert float(actions.min()) >= -1.0 and float(actions.max()) <= 1.0, "planner must clip actions"
        x, v = state.pv.unbind(-1)
        v = 0.9 * v + 0.1 * actions[:, 0]
        x = x + v
        pv = torch.stack([x, v], -1)
        B = pv.shape[0]
        return PointState(pv), StepOut(
            latent=pv,
            reward=-(x - self.target).abs(),
            terminated=torch.zeros(B, dtype=torch.bool),
            termination_prob=torch.zeros(B),
        )


class Leaky(ToyBase):
    """Reward 1 every step, termination_prob `p` every step, latent = 7 (for a value_fn test)."""

    action_spec = ActionSpec(kind="discrete", n=2)
    context_length = 1
    feature_dim = 2

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def init(self, context_frames: Tensor, context_actions: Tensor) -> CounterState:
        B = context_frames.shape[0]
        return CounterState(torch.zeros(B, dtype=torch.long), torch.zeros(B))

    def step(self, state: CounterState, actions: Tensor, generator: torch.Generator | None = None):
        B = actions.shape[0]
        return CounterState(state.t + 1, state.value), StepOut(
            latent=torch.full((B, 1), 7.0),
            reward=torch.ones(B),
            terminated=torch.full((B,), self.p > 0.5),
            termination_prob=torch.full((B,), self.p),
        )
