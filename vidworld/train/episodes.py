"""In-memory episode tensors and vectorised window sampling for training.

Episodes are decoded once (decord) into uint8 tensors, then frames (stage 1) or their cached latents
(stage 2) are drawn by index arithmetic over one flat tensor: no Python loop over the batch, no decode per
step. At CartPole scale (20k frames of 64x64) this is ~250 MB of uint8 and ~20 MB of latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Episodes:
    """Flat storage of E episodes. Episode e has N_e actions and N_e + 1 observations.

    obs: [sum(N_e + 1), ...] frames (uint8 [3, H, W]) or latents ([c, h, w]), episodes back to back.
    actions: [sum N_e] long; rewards: [sum N_e] float32; terminated: [sum N_e] bool.
    obs_offsets / act_offsets: [E] start of each episode in `obs` / `actions`; lengths: [E] = N_e.
    """

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    terminated: Tensor
    obs_offsets: Tensor
    act_offsets: Tensor
    lengths: Tensor

    @staticmethod
    def from_lists(obs: list[Tensor], actions: list[Tensor], rewards: list[Tensor], terminated: list[Tensor]) -> Episodes:
        for i, (o, a) in enumerate(zip(obs, actions)):
            if len(o) != len(a) + 1:
                raise ValueError(f"episode {i}: {len(o)} observations for {len(a)} actions (expected N+1 for N)")
        lengths = torch.tensor([len(a) for a in actions], dtype=torch.long)
        act_offsets = torch.cumsum(lengths, 0) - lengths
        obs_offsets = act_offsets + torch.arange(len(actions))
        return Episodes(
            obs=torch.cat(obs),
            actions=torch.cat(actions).long(),
            rewards=torch.cat(rewards).float(),
            terminated=torch.cat(terminated).bool(),
            obs_offsets=obs_offsets,
            act_offsets=act_offsets,
            lengths=lengths,
        )

    def with_obs(self, obs: Tensor) -> Episodes:
        """Same episodes with another per-frame representation (e.g. latents instead of pixels)."""
        assert len(obs) == len(self.obs), "replacement obs must have one entry per frame"
        return Episodes(obs, self.actions, self.rewards, self.terminated, self.obs_offsets, self.act_offsets, self.lengths)

    def previous_obs_index(self) -> Tensor:
        """long [num_frames]: index of each observation's predecessor in its own episode; an episode's first
        observation is its own predecessor (nothing moved into it)."""
        prev = torch.arange(len(self.obs)) - 1
        prev[self.obs_offsets] = self.obs_offsets
        return prev

    @property
    def num_frames(self) -> int:
        return len(self.obs)


@dataclass(frozen=True)
class WindowBatch:
    """context [B, K, ...] obs; actions [B, K] (taken at the context frames; the last one leads to
    `target`); target [B, ...]; reward [B], terminated [B] of that last transition."""

    context: Tensor
    actions: Tensor
    target: Tensor
    reward: Tensor
    terminated: Tensor
    target_index: Tensor  # [B] index of `target` in Episodes.obs (e.g. to look up its return-to-go)


class WindowSampler:
    """Samples (K context frames, K actions, next frame) windows uniformly over all transitions.

    With `pad_starts`, transitions near an episode start are included with the missing past filled by
    copies of the first frame and action 0 — the same padding an agent uses when it starts acting.
    """

    def __init__(self, episodes: Episodes, context_length: int, pad_starts: bool = True):
        self.ep = episodes
        self.K = context_length
        # one entry per transition (e, t): the target is obs t+1, the last context obs is t
        ep_idx = torch.repeat_interleave(torch.arange(len(episodes.lengths)), episodes.lengths)
        t = torch.arange(len(episodes.actions)) - episodes.act_offsets[ep_idx]
        keep = t >= (0 if pad_starts else context_length - 1)
        self.ep_idx, self.t = ep_idx[keep], t[keep]
        if len(self.t) == 0:
            raise ValueError(f"no training windows: every episode is shorter than context_length={context_length}")

    def __len__(self) -> int:
        return len(self.t)

    def get(self, idx: Tensor) -> WindowBatch:
        """Windows for transition ids idx [B] (vectorised gather)."""
        e, t = self.ep_idx[idx], self.t[idx]
        rel = t[:, None] + torch.arange(-self.K + 1, 1)[None]  # [B, K] obs/action times, may be < 0
        valid = rel >= 0
        rel = rel.clamp(min=0)
        obs_i = self.ep.obs_offsets[e][:, None] + rel
        act_i = self.ep.act_offsets[e][:, None] + rel
        context = self.ep.obs[obs_i]
        actions = torch.where(valid, self.ep.actions[act_i], torch.zeros_like(act_i))
        last = self.ep.act_offsets[e] + t
        target_index = self.ep.obs_offsets[e] + t + 1
        return WindowBatch(
            context=context,
            actions=actions,
            target=self.ep.obs[target_index],
            reward=self.ep.rewards[last],
            terminated=self.ep.terminated[last],
            target_index=target_index,
        )

    def sample(self, batch_size: int, generator: torch.Generator) -> WindowBatch:
        return self.get(torch.randint(len(self), (batch_size,), generator=generator))
