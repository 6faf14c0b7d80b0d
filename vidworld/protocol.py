"""The world-model protocol shared by simulators, planners and learners.

Every world model (latent diffusion, RSSM, MuZero) is functional:

    state = model.init(context_frames, context_actions)   # frames uint8 [B, K, 3, H, W], actions long [B, K-1]
    state, out = model.step(state, actions, generator=g)   # actions long [B] (discrete): taken at the last frame
    frames = model.decode(state)                            # uint8 [B, 3, H, W] (pixel models only)

Alignment (as in DIAMOND): `context_actions[:, i]` is the action taken at `context_frames[:, i]`, leading to
frame i+1; so K frames come with K-1 actions, and `step` supplies the action taken at the newest frame.

A state is a frozen dataclass whose tensor fields all have the batch as their leading dim, so consumers can
branch by indexing/repeating it (`index_state`, `repeat_state`) without knowing what is inside.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

import torch
from torch import Tensor

S = TypeVar("S")


@dataclass(frozen=True)
class StepOut:
    """What one imagined step returns, batched over B.

    latent: [B, ...] the model's embedding of the next observation (diffusion: [B, c, h, w] VAE latent).
    reward: [B] float32 predicted reward of the transition.
    terminated: [B] bool, predicted episode end (termination_prob > 0.5).
    termination_prob: [B] float32 in [0, 1].
    """

    latent: Tensor
    reward: Tensor
    terminated: Tensor
    termination_prob: Tensor


@dataclass(frozen=True)
class ActionSpec:
    """Actions a world model accepts. Discrete: `n` actions, long ids in [0, n). Continuous: `shape`,
    float in [low, high] (not used by the models yet; planners keep the door open)."""

    kind: str = "discrete"
    n: int = 0
    shape: tuple[int, ...] = ()
    low: float = -1.0
    high: float = 1.0

    def check(self, actions: Tensor, batch: int | None = None) -> Tensor:
        """Validate a batch of actions, raising ValueError naming what was expected."""
        if self.kind == "discrete":
            if actions.dtype.is_floating_point or actions.dtype == torch.bool:
                raise ValueError(f"discrete actions must be integer ids in [0, {self.n}), got dtype {actions.dtype}")
            if actions.dim() != 1 or (batch is not None and actions.shape[0] != batch):
                raise ValueError(f"actions must have shape [B={batch}], got {tuple(actions.shape)}")
            if actions.numel() and (int(actions.min()) < 0 or int(actions.max()) >= self.n):
                raise ValueError(
                    f"action out of range: got values in [{int(actions.min())}, {int(actions.max())}], "
                    f"expected ids in [0, {self.n})"
                )
            return actions.long()
        if actions.shape[1:] != self.shape:
            raise ValueError(f"continuous actions must have shape [B, *{self.shape}], got {tuple(actions.shape)}")
        return actions.float()


@runtime_checkable
class WorldModel(Protocol):
    """Structural type every world model implements (see module docstring)."""

    action_spec: ActionSpec
    context_length: int

    def init(self, context_frames: Tensor, context_actions: Tensor): ...

    def step(self, state, actions: Tensor, generator: torch.Generator | None = None): ...


def _batch_fields(state) -> list[dataclasses.Field]:
    if not dataclasses.is_dataclass(state):
        raise TypeError(f"world-model state must be a dataclass of tensors, got {type(state).__name__}")
    return [f for f in dataclasses.fields(state) if isinstance(getattr(state, f.name), Tensor)]


def map_state(fn, state: S) -> S:
    """Apply `fn` to every tensor field of a state dataclass (leading dim = batch)."""
    return dataclasses.replace(state, **{f.name: fn(getattr(state, f.name)) for f in _batch_fields(state)})


def index_state(state: S, idx: Tensor | slice | int) -> S:
    """Select batch rows of a state (e.g. the best plan, or alive environments)."""
    if isinstance(idx, int):
        idx = slice(idx, idx + 1)
    return map_state(lambda t: t[idx], state)


def repeat_state(state: S, n: int) -> S:
    """[B, ...] -> [B * n, ...], each row repeated n times consecutively (branch a state n ways)."""
    return map_state(lambda t: t.repeat_interleave(n, dim=0), state)


def cat_states(states: list[S]) -> S:
    """Concatenate states along the batch dim."""
    first = states[0]
    return dataclasses.replace(
        first, **{f.name: torch.cat([getattr(s, f.name) for s in states]) for f in _batch_fields(first)}
    )


def state_batch_size(state) -> int:
    return getattr(state, _batch_fields(state)[0].name).shape[0]
