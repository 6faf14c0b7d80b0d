"""The world-model protocol (v2) shared by simulators, planners, learners and evaluation.

Every world model (latent diffusion, RSSM, MuZero, copy-last) is functional:

    state = model.init(context_frames, context_actions)   # frames uint8 [B, K, 3, H, W], actions long [B, K-1]
    state, out = model.step(state, actions, generator=g)   # actions long [B] (discrete): taken at the last frame
    feats = model.features(state)                           # float [B, model.feature_dim]: what actors,
                                                            #   critics, value functions and priors read

and saves/loads as one folder (`save_pretrained`; `vidworld.world_models.load_world_model(path)` dispatches on
the `kind` recorded in its `world_model.json`). What only some models can do is declared by small capability
protocols, checked with `isinstance(model, Capability)` (never by probing attributes with getattr):

* `PixelDecoder`: `decode(state)` -> uint8 frames [B, 3, H, W]; `decode_from(state, latents)` decodes the
  `StepOut.latent`s of a rollout relative to the real frames the state was built from (diffusion, RSSM,
  copy-last; not MuZero);
* `ValuePredictor`: `value(state)` -> [B], a learned state value (planners bootstrap with it, MCTS values its
  root and leaves with it); `has_value` says whether this instance has one;
* `LatentObserver`: `latent(state)` -> [B, *latent_shape], the newest observation's latent (the gymnasium
  simulator's `obs_type="latent"`);
* `TeacherForcedHeads`: `encode(frames)` + `predict_heads(state, actions, next_latent) -> StepOut`, judging
  the reward/termination heads on the real next frame (evaluation);
* `Autoencoder`: `reconstruct(frames)` -> frames, the autoencoder's ceiling (evaluation);
* `Filtering`: `observe(state, actions, frames)` -> the state after a REAL transition (acting in a real env
  without re-encoding the whole context every step: DreamerV3's posterior update; diffusion: encode the one
  new frame and shift the window).

Alignment (as in DIAMOND): `context_actions[:, i]` is the action taken at `context_frames[:, i]`, leading to
frame i+1; so K frames come with K-1 actions, and `step` supplies the action taken at the newest frame.

A state is a frozen dataclass whose tensor fields all have the batch as their leading dim, so consumers can
branch by indexing/repeating it (`index_state`, `repeat_state`) without knowing what is inside.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

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
    """Structural type every world model implements (see module docstring).

    action_spec: the actions `step` accepts; context_length: K, the frames `init` takes; frame_size: S, the
    side of the square uint8 frames it takes (and, for pixel decoders, makes); feature_dim: F of `features`;
    meta: provenance (env_id, dataset, fps, ...), saved with the model; device: where its tensors live.
    """

    action_spec: ActionSpec
    context_length: int
    frame_size: int
    feature_dim: int
    meta: dict

    @property
    def device(self) -> torch.device: ...

    def init(self, context_frames: Tensor, context_actions: Tensor) -> Any:
        """frames uint8 [B, K, 3, S, S], actions long [B, K-1] -> state (a dataclass of batch-first tensors)."""

    def step(self, state: Any, actions: Tensor, generator: torch.Generator | None = None) -> tuple[Any, StepOut]:
        """actions [B] -> (next state, StepOut). Stochastic models draw all noise from `generator`."""

    def features(self, state: Any) -> Tensor:
        """float [B, feature_dim] summary of a state (no pixel decoding)."""

    def save_pretrained(self, path: str | os.PathLike) -> None: ...


@runtime_checkable
class PixelDecoder(Protocol):
    def decode(self, state: Any) -> Tensor:
        """The newest frame of a state -> uint8 [B, 3, S, S]."""

    def decode_from(self, state: Any, latents: Tensor) -> Tensor:
        """StepOut.latent's [N, ...] imagined from the batch-1 `state` -> uint8 [N, 3, S, S]."""


@runtime_checkable
class ValuePredictor(Protocol):
    has_value: bool

    def value(self, state: Any) -> Tensor:
        """Learned value of each state -> float [B]; raises ValueError when `has_value` is False."""


@runtime_checkable
class LatentObserver(Protocol):
    latent_shape: tuple[int, ...]

    def latent(self, state: Any) -> Tensor:
        """The newest observation's latent -> float [B, *latent_shape]."""


@runtime_checkable
class TeacherForcedHeads(Protocol):
    def encode(self, frames: Tensor) -> Tensor:
        """uint8 [B, 3, S, S] -> latents [B, ...] (what StepOut.latent holds)."""

    def predict_heads(self, state: Any, actions: Tensor, next_latent: Tensor) -> StepOut:
        """Reward/termination of taking `actions` [B] in `state` and landing in `next_latent` (teacher forcing)."""


@runtime_checkable
class Autoencoder(Protocol):
    def reconstruct(self, frames: Tensor) -> Tensor:
        """uint8 [B, 3, S, S] -> its autoencoder round trip, uint8 [B, 3, S, S]."""


@runtime_checkable
class Filtering(Protocol):
    def observe(self, state: Any, actions: Tensor, frames: Tensor) -> Any:
        """`actions` [B] were taken in `state` and the real env showed `frames` uint8 [B, 3, S, S]: the state
        that `init` would build from the context extended by that step (up to float rounding)."""


def value_function(model: Any) -> Any:
    """`model.value` if the model declares a value and has one, else None (planners then bootstrap with 0)."""
    return model.value if isinstance(model, ValuePredictor) and model.has_value else None


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
