"""Sequence batches for RSSM training: B windows of T consecutive frames from the flat episode store.

Windows may cross episode boundaries, as DreamerV3's replay chunks do: the frame that starts an episode
is marked `is_first` and the RSSM resets its state there (the action into it is zeroed, its reward is 0
and its continue flag 1). Every window also starts from the initial state (`is_first[:, 0] = True`), the
same way `RSSMWorldModel.init` filters a context that begins mid-episode. Gathers are index arithmetic over
precomputed per-frame arrays: no Python loop over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vidworld.train.episodes import Episodes


@dataclass(frozen=True)
class SequenceBatch:
    """frames uint8 [B, T, 3, S, S]; prev_actions long [B, T] (the action that led to frame t, 0 at
    episode starts); rewards float [B, T] (of the transition into frame t); cont float [B, T] (0 where that
    transition terminated the episode); is_first bool [B, T]; returns float [B, T] (the discounted return
    from frame t on, or None without return targets)."""

    frames: Tensor
    prev_actions: Tensor
    rewards: Tensor
    cont: Tensor
    is_first: Tensor
    returns: Tensor | None = None


class SequenceSampler:
    """Uniform windows of `seq_len` frames over all frames of `episodes`; `returns` [num_frames]: per-frame
    value targets to gather alongside (optional)."""

    def __init__(self, episodes: Episodes, seq_len: int, returns: Tensor | None = None):
        n = episodes.num_frames
        if n < seq_len:
            raise ValueError(f"rssm.seq_len={seq_len} is longer than the {n} frames of the split; "
                             "lower rssm.seq_len or collect more data")
        self.ep, self.seq_len = episodes, seq_len
        ep_of = torch.repeat_interleave(torch.arange(len(episodes.lengths)), episodes.lengths + 1)
        local = torch.arange(n) - episodes.obs_offsets[ep_of]  # frame index within its episode
        self.is_first = local == 0
        into = (episodes.act_offsets[ep_of] + local - 1).clamp(min=0)  # the transition that led to each frame
        self.prev_actions = torch.where(self.is_first, 0, episodes.actions[into])
        self.rewards = torch.where(self.is_first, 0.0, episodes.rewards[into])
        self.cont = torch.where(self.is_first, True, ~episodes.terminated[into]).float()
        self.num_starts = n - seq_len + 1
        self.returns = returns

    def get(self, starts: Tensor) -> SequenceBatch:
        """Windows beginning at flat frame indices starts [B]."""
        idx = starts[:, None] + torch.arange(self.seq_len)[None]
        is_first = self.is_first[idx]
        is_first[:, 0] = True
        return SequenceBatch(frames=self.ep.obs[idx], prev_actions=self.prev_actions[idx],
                             rewards=self.rewards[idx], cont=self.cont[idx], is_first=is_first,
                             returns=None if self.returns is None else self.returns[idx])

    def sample(self, batch_size: int, generator: torch.Generator) -> SequenceBatch:
        return self.get(torch.randint(self.num_starts, (batch_size,), generator=generator))
