"""SegmentDataset: fixed-length windows of consecutive frames and actions from an episode store.

A window of L = K + T frames (K context, T horizon) starting at frame t of an episode with N transitions
(N+1 frames) exists for every t with t + L <= N + 1; shorter episodes contribute none.

The train/val split is by episode, and stable as the store grows: episode `name` goes to val iff
hash(split_seed, name) < val_fraction, so appending episodes never moves an old episode across the split
(a model trained before and after an append never sees its val episodes). With >= 2 episodes and
val_fraction > 0 there is at least one val and one train episode.

Corrupt episodes: those the store cannot open (bad header, missing/invalid npz, wrong frame count) are left
out when the store is opened; those that fail while their frames are decoded (decord error mid-stream, or
frames whose byte sums differ from the npz's `frame_sums`) are left out by `iter_episodes`. Both are
warned about, naming the file, and listed in `skipped_episodes` (names; reasons in `skipped_reasons`), per
split: an episode skipped at open counts in the split its name hashes to, so train + val count each
once. With skip_corrupt=False both raise DatasetError instead.

Frames are decoded with decord per window (`get_batch`). Readers are opened lazily in each process and
never pickled or reused across a fork, so the dataset works with `DataLoader(num_workers > 0)`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from vidworld.config import check_field
from vidworld.data.arrays import check_frame_sums
from vidworld.data.errors import DatasetError
from vidworld.data.store import Episode, EpisodeStore
from vidworld.data.video import FrameReader, VideoReadError


@dataclass
class DatasetConfig:
    """Where the episodes are and how they split into train / held-out episodes (YAML section `data`).
    How long a window is (context_length) belongs to the model (`model.context_length`)."""

    path: str = "data/cartpole"
    val_fraction: float = 0.1
    split_seed: int = 0

    def __post_init__(self) -> None:
        check_field(self, "val_fraction", ge=0, lt=1)


def _unit_hash(names: list[str], seed: int) -> np.ndarray:
    """float [E] in [0, 1): a stable hash of (seed, name)."""
    return np.array([int.from_bytes(hashlib.sha256(f"{seed}:{n}".encode()).digest()[:8], "big") / 2.0**64
                     for n in names])


def split_episodes(names: list[str], val_fraction: float, seed: int) -> np.ndarray:
    """bool [E]: True for the episodes that belong to the validation split (see module docstring)."""
    u = _unit_hash(names, seed)
    is_val = u < val_fraction
    if len(names) >= 2 and val_fraction > 0:
        if not is_val.any():
            is_val[np.argmin(u)] = True
        if is_val.all():
            is_val[np.argmax(u)] = False
    return is_val


class SegmentDataset(Dataset):
    """Windows of L = K + T consecutive frames of one episode.

    Item (dict):
        frames:     uint8 [L, 3, H, W]
        actions:    long [L-1] (discrete) or float32 [L-1, *shape] (box); actions[i] is taken at frames[i]
                    and leads to frames[i+1]
        rewards:    float32 [L-1]   reward of transition i
        terminated: bool [L-1]      transition i ended the episode (terminal state)
        truncated:  bool [L-1]      transition i was cut by a time limit / end of collection
        episode:    int             index of the episode in `self.store.episodes`
        start:      int             index of frames[0] in that episode
    """

    def __init__(self, path_or_store: str | os.PathLike | EpisodeStore, context_length: int = 4,
                 horizon: int = 1, split: Literal["train", "val", "all"] = "train", val_fraction: float = 0.1,
                 split_seed: int = 0, skip_corrupt: bool = True, max_open_readers: int = 64):
        if context_length < 1 or horizon < 0:
            raise ValueError(f"need context_length >= 1 and horizon >= 0, got {context_length}, {horizon}")
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.store = (path_or_store if isinstance(path_or_store, EpisodeStore)
                      else EpisodeStore.open(path_or_store, skip_corrupt=skip_corrupt))
        self.skip_corrupt = skip_corrupt
        self.context_length, self.horizon = context_length, horizon
        self.length = context_length + horizon
        self.split = split
        is_val = split_episodes([e.name for e in self.store.episodes], val_fraction, split_seed)
        keep = {"train": ~is_val, "val": is_val, "all": np.ones_like(is_val)}[split]
        self.episode_ids: list[int] = [i for i in range(len(self.store.episodes)) if keep[i]]
        self._count_windows()
        # Episodes of this split left out as corrupt: names (what a training summary reports) and reasons.
        self.skipped_reasons: dict[str, str] = {}
        skipped_val = _unit_hash([s.name for s in self.store.skipped], split_seed) < val_fraction
        for s, v in zip(self.store.skipped, skipped_val):
            if split == "all" or v == (split == "val"):
                self.skipped_reasons[s.name] = s.reason
        self.max_open_readers = max_open_readers
        self._readers: OrderedDict[int, FrameReader] = OrderedDict()
        self._inherited: list = []
        self._pid = os.getpid()
        self._frames_cache: dict[int, np.ndarray] = {}

    def _count_windows(self) -> None:
        # Windows per episode: starts 0 .. N+1-L.
        counts = [max(0, self.store.episodes[i].length + 2 - self.length) for i in self.episode_ids]
        self._ends = np.cumsum(counts, dtype=np.int64)

    @property
    def skipped_episodes(self) -> list[str]:
        """Names of this split's episodes left out as corrupt (when the store was opened, or while
        `iter_episodes` decoded them); `skipped_reasons[name]` says why."""
        return list(self.skipped_reasons)

    @classmethod
    def from_config(cls, cfg: DatasetConfig, context_length: int, horizon: int = 1,
                    split: Literal["train", "val", "all"] = "train", **kwargs) -> SegmentDataset:
        """Windows of context_length + horizon frames of the split `cfg` describes."""
        return cls(cfg.path, context_length, horizon, split, cfg.val_fraction, cfg.split_seed, **kwargs)

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def window(self, idx: int) -> tuple[int, int]:
        """Window idx -> (episode index in the store, start frame)."""
        if not 0 <= idx < len(self):
            raise IndexError(f"window {idx} out of range for a dataset of {len(self)} windows")
        k = int(np.searchsorted(self._ends, idx, side="right"))
        start = idx - (int(self._ends[k - 1]) if k > 0 else 0)
        return self.episode_ids[k], start

    def __getitem__(self, idx: int) -> dict:
        ep, start = self.window(idx)
        L = self.length
        frames = self._reader(ep).get(range(start, start + L))  # [L, H, W, 3]
        a = self.store.arrays(ep)
        check_frame_sums(frames, a.frame_sums, start, self.store.video_path(ep))
        sl = slice(start, start + L - 1)
        actions = torch.from_numpy(np.ascontiguousarray(a.actions[sl]))
        return {
            "frames": torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
            "actions": actions.long() if actions.dtype == torch.int64 else actions.float(),
            "rewards": torch.from_numpy(a.rewards[sl].copy()),
            "terminated": torch.from_numpy(a.terminated[sl].copy()),
            "truncated": torch.from_numpy(a.truncated[sl].copy()),
            "episode": ep,
            "start": start,
        }

    def _reader(self, ep: int) -> FrameReader:
        if self._pid != os.getpid():
            # Forked (DataLoader worker): the parent's decord readers must not be used, nor freed here
            # (their native state belongs to the parent); keep them alive, untouched, and open new ones.
            self._inherited.append(self._readers)
            self._readers, self._pid = OrderedDict(), os.getpid()
        reader = self._readers.get(ep)
        if reader is None:
            reader = self._readers[ep] = FrameReader(self.store.video_path(ep))
            if len(self._readers) > self.max_open_readers:  # bound open files on big datasets
                self._readers.popitem(last=False)
        else:
            self._readers.move_to_end(ep)
        return reader

    def __getstate__(self) -> dict:
        # Readers are native handles (not picklable); frame caches can be large: neither travels.
        state = dict(self.__dict__)
        state.update(_readers=OrderedDict(), _inherited=[], _frames_cache={}, _pid=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def episode_frames(self, ep: int) -> np.ndarray:
        """All frames of store episode `ep` as uint8 [N+1, H, W, 3], decoded once and cached in memory
        (N+1 * H * W * 3 bytes each: ~12 KB per 64x64 frame)."""
        frames = self._frames_cache.get(ep)
        if frames is None:
            frames = self._reader(ep).read_all()
            check_frame_sums(frames, self.store.arrays(ep).frame_sums, 0, self.store.video_path(ep))
            self._frames_cache[ep] = frames
        return frames

    def iter_episodes(self) -> Iterator[Episode]:
        """The whole episodes of this split, in store order (decoded one at a time, not cached).

        An episode whose video fails to decode or whose frames differ from its `frame_sums` is skipped with
        a warning naming the file, recorded in `skipped_episodes` and dropped from this dataset's windows
        (with skip_corrupt=False: DatasetError)."""
        for ep in list(self.episode_ids):
            name = self.store.episodes[ep].name
            frames = self._frames_cache.get(ep)
            if frames is None:
                try:
                    frames = self.store.load_episode(ep).frames
                except (VideoReadError, DatasetError) as e:
                    if not self.skip_corrupt:
                        raise DatasetError(f"invalid episode {name} in {self.store.root}: {e}") from None
                    warnings.warn(f"skipping episode {name} of {self.store.root}: {e}", stacklevel=2)
                    self.skipped_reasons[name] = str(e)
                    self.episode_ids.remove(ep)
                    self._count_windows()
                    continue
            yield Episode(name, frames, self.store.arrays(ep))
