"""The arrays of an episode besides its frames: the npz format, external npz/npy actions, and checks.

`EpisodeStore` (store.py) owns the folder and manifest; this module owns what one episode's arrays are,
how they are written and read, and how they are checked against the frames.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidworld.data.errors import DatasetError
from vidworld.atomic import atomic_path
from vidworld.data.video import VideoReadError


@dataclass(frozen=True)
class EpisodeArrays:
    """Everything of an episode but its frames. actions: int64 [N] (discrete) or float32 [N, *shape] (box)."""

    actions: np.ndarray
    rewards: np.ndarray  # float32 [N]
    terminated: np.ndarray  # bool [N]
    truncated: np.ndarray  # bool [N]
    state: np.ndarray | None = None  # float32 [N+1, d]
    frame_sums: np.ndarray | None = None  # int64 [N+1]


def frame_sums(frames: np.ndarray) -> np.ndarray:
    """int64 [T] byte sum per frame of uint8 frames [T, H, W, 3]."""
    return frames.reshape(frames.shape[0], -1).sum(axis=1, dtype=np.int64)


def check_frame_sums(frames: np.ndarray, sums: np.ndarray | None, start: int, path: Path) -> None:
    """Raise VideoReadError if decoded frames [L, H, W, 3] differ from the sums written for frames start.."""
    if sums is None:
        return
    got = frame_sums(frames)
    want = sums[start : start + len(frames)]
    if not np.array_equal(got, want):
        bad = start + int(np.flatnonzero(got != want)[0])
        raise VideoReadError(f"{path}: frame {bad} decodes differently from what was written (corrupt file)")


def check_lengths(a: EpisodeArrays, n_frames: int, where: str) -> None:
    n = len(a.actions)
    if n_frames != n + 1:
        raise DatasetError(f"{where}: {n_frames} frames for {n} actions; expected N+1 = {n + 1} frames "
                           "(obs_0 .. obs_N)")
    for key in ("rewards", "terminated", "truncated"):
        if getattr(a, key).shape != (n,):
            raise DatasetError(f"{where}: {key} has shape {getattr(a, key).shape}, expected ({n},)")
    for key in ("state", "frame_sums"):
        v = getattr(a, key)
        if v is not None and len(v) != n + 1:
            raise DatasetError(f"{where}: {key} has {len(v)} rows, expected N+1 = {n + 1}")


def save_npz(path: Path, a: EpisodeArrays) -> None:
    arrays = {k: v for k, v in a.__dict__.items() if v is not None}
    with atomic_path(path) as tmp, open(tmp, "xb") as f:
        np.savez(f, **arrays)


def load_npz(path: Path) -> EpisodeArrays:
    if not path.is_file():
        raise DatasetError(f"missing {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"cannot read {path}: {e}") from None
    if "actions" not in d:
        raise DatasetError(f"{path} has no 'actions' array (has {sorted(d)})")
    n = len(d["actions"])
    return EpisodeArrays(
        actions=d["actions"],
        rewards=d.get("rewards", np.zeros(n, np.float32)).astype(np.float32),
        terminated=d.get("terminated", np.zeros(n, bool)).astype(bool),
        truncated=d.get("truncated", np.zeros(n, bool)).astype(bool),
        state=d["state"].astype(np.float32) if "state" in d else None,
        frame_sums=d.get("frame_sums"),
    )


def load_external_arrays(video: Path) -> EpisodeArrays:
    npz, npy = video.with_suffix(".npz"), video.with_suffix(".npy")
    if npz.is_file():
        a = load_npz(npz)
    elif npy.is_file():
        try:
            actions = np.load(npy, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise DatasetError(f"cannot read {npy}: {e}") from None
        n = len(actions)
        a = EpisodeArrays(actions, np.zeros(n, np.float32), np.zeros(n, bool), np.zeros(n, bool))
    else:
        raise DatasetError(f"{video} has no actions: expected {npz.name} or {npy.name} beside it")
    if a.truncated.size and not (a.terminated.any() or a.truncated.any()):
        # How the episode ended is unknown: call it a truncation, never a termination.
        truncated = a.truncated.copy()
        truncated[-1] = True
        a = EpisodeArrays(a.actions, a.rewards, a.terminated, truncated, a.state)
    return a


def drop_last(a: EpisodeArrays) -> EpisodeArrays:
    """N frames for N actions: keep the N-1 transitions whose outcome frame exists."""
    truncated = a.truncated[:-1].copy()
    if not a.terminated[:-1].any():
        truncated[-1] = True
    return EpisodeArrays(a.actions[:-1], a.rewards[:-1], a.terminated[:-1], truncated, a.state)
