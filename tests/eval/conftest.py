"""Test-only worlds for the eval tests: a tiny deterministic 'cart on a rail' environment and world models
that follow it exactly, ignore actions, or add noise.

The world: an S x S image (S = 8) with a bright column at position pos in [0, S-1] over a faint texture.
Action 1 moves right, 0 moves left (clamped to the rail). A transition terminates when it lands on an edge
(pos 0 or S-1) and pays reward pos_next / S, so both heads have something non-trivial to predict.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from vidworld.protocol import ActionSpec, StepOut

S = 8


def render(pos: Tensor) -> Tensor:
    """pos long [B] -> uint8 [B, 3, S, S]."""
    cols = torch.arange(S)
    texture = (torch.arange(S)[:, None] * 7 + cols[None, :] * 13) % 40  # [S, S], fixed background
    img = texture[None].expand(pos.shape[0], S, S).clone()
    img[cols[None, None, :].expand_as(img) == pos[:, None, None]] = 230
    return torch.stack([img, img // 2, 255 - img], 1).to(torch.uint8)


def locate(frames: Tensor) -> Tensor:
    """uint8 [B, 3, S, S] -> pos long [B] (brightest column of channel 0)."""
    return frames[:, 0].float().mean(1).argmax(1)


def transition(pos: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    nxt = (pos + 2 * actions.long() - 1).clamp(0, S - 1)
    return nxt, nxt.float() / S, (nxt == 0) | (nxt == S - 1)


def make_clips(batch: int, length: int, seed: int = 0) -> dict[str, Tensor]:
    """A batch like SegmentDataset+DataLoader gives: frames [B, L, 3, S, S], actions/rewards/terminated/
    truncated [B, L-1]. After a terminal step the clip keeps going (as if padded with junk), so evaluators
    must mask it."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.randint(1, S - 1, (batch,), generator=g)
    actions = torch.randint(0, 2, (batch, length - 1), generator=g)
    frames, rewards, terms = [render(pos)], [], []
    for t in range(length - 1):
        pos, r, d = transition(pos, actions[:, t])
        frames.append(render(pos))
        rewards.append(r)
        terms.append(d)
    return {
        "frames": torch.stack(frames, 1),
        "actions": actions,
        "rewards": torch.stack(rewards, 1),
        "terminated": torch.stack(terms, 1),
        "truncated": torch.zeros(batch, length - 1, dtype=torch.bool),
    }


def replay(start_frames: Tensor, actions: Tensor) -> Tensor:
    """The 'env replay' the lead provides for real envs: frames uint8 [B, H, 3, S, S] reached from the
    position shown in start_frames [B, 3, S, S] under actions [B, H]."""
    pos, out = locate(start_frames), []
    for t in range(actions.shape[1]):
        pos, _, _ = transition(pos, actions[:, t])
        out.append(render(pos))
    return torch.stack(out, 1)


@dataclass(frozen=True)
class PosState:
    pos: Tensor  # long [B]
    noise: Tensor  # uint8 [B, 3, S, S], added to the decoded frame


class ToyModel:
    """follow=True: exact simulator. follow=False: pretends every action is 0 (left). noise > 0: adds
    generator-driven uint8 noise to each frame (a stochastic model). Heads are computed from the next
    position, so `predict_heads` on the real next frame is exact even when the dynamics are wrong."""

    action_spec = ActionSpec(n=2)
    context_length = 3
    frame_size = S
    feature_dim = 1
    device = torch.device("cpu")

    def __init__(self, follow: bool = True, noise: int = 0):
        self.follow, self.noise = follow, noise
        self.meta: dict = {}

    def features(self, state: PosState) -> Tensor:
        return state.pos.float()[:, None]

    def decode_from(self, state: PosState, latents: Tensor) -> Tensor:
        return render(latents.round().long())

    def init(self, context_frames: Tensor, context_actions: Tensor) -> PosState:
        assert context_frames.shape[1:] == (self.context_length, 3, S, S)
        assert context_actions.shape == (context_frames.shape[0], self.context_length - 1)
        b = context_frames.shape[0]
        return PosState(locate(context_frames[:, -1]), torch.zeros(b, 3, S, S, dtype=torch.uint8))

    def _heads(self, pos: Tensor) -> StepOut:
        reward = pos.float() / S
        term = (pos == 0) | (pos == S - 1)
        return StepOut(latent=pos.float(), reward=reward, terminated=term, termination_prob=term.float())

    def step(self, state: PosState, actions: Tensor, generator: torch.Generator | None = None):
        self.action_spec.check(actions, batch=state.pos.shape[0])
        acts = actions if self.follow else torch.zeros_like(actions)
        pos, _, _ = transition(state.pos, acts)
        noise = torch.zeros_like(state.noise)
        if self.noise:
            noise = torch.randint(0, self.noise, state.noise.shape, generator=generator).to(torch.uint8)
        return PosState(pos, noise), self._heads(pos)

    def decode(self, state: PosState) -> Tensor:
        return (render(state.pos).int() + state.noise.int()).clamp(0, 255).to(torch.uint8)

    def encode(self, frames: Tensor) -> Tensor:
        return locate(frames).float()

    def predict_heads(self, state: PosState, actions: Tensor, next_latent: Tensor) -> StepOut:
        return self._heads(next_latent.round().long())

    def reconstruct(self, frames: Tensor) -> Tensor:
        """A lossy 'autoencoder': drops the 2 low bits (error known in closed form)."""
        return frames // 4 * 4


@pytest.fixture
def clips() -> dict[str, Tensor]:
    return make_clips(batch=6, length=9, seed=0)


@pytest.fixture
def toy():
    """The toy world's pieces (fixtures, because test modules cannot import conftest reliably)."""
    from types import SimpleNamespace

    return SimpleNamespace(
        S=S, render=render, locate=locate, make_clips=make_clips, replay=replay, ToyModel=ToyModel
    )
