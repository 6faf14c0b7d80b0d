"""The online loop's replay: every real episode, on disk in the episode store (mp4 + npz + manifest, the same
format `vidworld collect` writes) and decoded in memory for training and for sampling start contexts.

The store is the durable copy: a resumed loop reopens it, keeps exactly the episodes its checkpoint lists
(`EpisodeStore.keep_first`: what was collected after the checkpoint is deleted and collected again), and
decodes them back into memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vidworld.data.store import EpisodeStore
from vidworld.train.episodes import Episodes, WindowSampler


@dataclass
class RealEpisode:
    """frames uint8 [N+1, S, S, 3]; actions int [N]; rewards float32 [N]; terminated / truncated bool [N];
    state float32 [N+1, d] or None."""

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    state: np.ndarray | None = None

    @property
    def steps(self) -> int:
        return len(self.actions)


@dataclass
class Replay:
    store: EpisodeStore
    frames: list[Tensor] = field(default_factory=list)  # per episode uint8 [N+1, 3, S, S]
    actions: list[Tensor] = field(default_factory=list)
    rewards: list[Tensor] = field(default_factory=list)
    terminated: list[Tensor] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path, env_id: str, frame_size: int, fps: float, action_space: Any,
             keep: list[str] | None) -> Replay:
        """The store at `path` (created if absent), rolled back to `keep` (None: a fresh loop, the store must
        be empty), with its episodes decoded into memory."""
        store = EpisodeStore.open_or_create(path, env_id, frame_size, fps, action_space)
        if keep is None and len(store.listed_names):
            raise ValueError(f"replay store {path} already holds episodes; pass --resume to continue that run or "
                             "--overwrite to start over")
        store.keep_first(keep or [])
        return cls.of_store(store)

    @classmethod
    def of_store(cls, store: EpisodeStore) -> Replay:
        """Every episode of an open store decoded into memory (the store is not changed)."""
        replay = cls(store)
        for i in range(len(store)):
            ep = store.load_episode(i)
            replay._add(ep.frames, ep.arrays.actions, ep.arrays.rewards, ep.arrays.terminated)
        return replay

    def _add(self, frames: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: np.ndarray) -> None:
        self.frames.append(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous())
        self.actions.append(torch.as_tensor(np.asarray(actions)).long())
        self.rewards.append(torch.as_tensor(np.asarray(rewards, np.float32)))
        self.terminated.append(torch.as_tensor(np.asarray(terminated, bool)))

    def append(self, ep: RealEpisode) -> None:
        """Write the episode to the store (durable) and keep it in memory."""
        self.store.append(ep.frames, ep.actions, ep.rewards, ep.terminated, ep.truncated, state=ep.state)
        self._add(ep.frames, ep.actions, ep.rewards, ep.terminated)

    @property
    def names(self) -> list[str]:
        return self.store.listed_names

    @property
    def num_steps(self) -> int:
        return int(sum(len(a) for a in self.actions))

    def episodes(self) -> Episodes:
        """Everything so far as flat training `Episodes` (frames uint8 [N, 3, S, S])."""
        return Episodes.from_lists(self.frames, self.actions, self.rewards, self.terminated)

    def start_contexts(self, n: int, context_length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """n random real contexts to imagine from: frames uint8 [n, K, 3, S, S], actions long [n, K-1]
        (episode starts padded with the first frame, as the acting agent pads them). Flattens the whole replay
        on every call: for one-off draws; a loop drawing many batches builds one `WindowSampler` instead."""
        batch = WindowSampler(self.episodes(), context_length, pad_starts=True).sample(n, generator)
        return batch.context, batch.actions[:, :-1]
