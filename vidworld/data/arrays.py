"""The arrays of an episode besides its frames: the npz format, external npz/npy actions, and checks.

`EpisodeStore` (store.py) owns the folder and manifest; this module owns what one episode's arrays are,
how they are written and read, and how they are checked against the frames.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidworld.atomic import atomic_path
from vidworld.data.errors import DatasetError, first_line
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
    # uint8 [n]: what restores the real env to frame 0 (envs/pixels.py `episode_start`; ALE, MiniGrid)
    episode_start: np.ndarray | None = None


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


# Keys of a native episode npz (data/README.md); external npz files need only "actions".
NATIVE_KEYS = ("actions", "rewards", "terminated", "truncated")


def _typed(path: Path, key: str, v: np.ndarray, kinds: str, expected: str) -> np.ndarray:
    """`v` if its dtype kind is one of `kinds` (numpy kind codes: b bool, i/u int, f float)."""
    if v.dtype.kind not in kinds or v.ndim < 1:
        raise DatasetError(f"{path}: '{key}' is {v.dtype} {list(v.shape)}; expected {expected}")
    return v


def load_npz(path: Path, native: bool = True) -> EpisodeArrays:
    """The arrays of one episode. Native files must hold NATIVE_KEYS (frame_sums and state optional);
    external ones only "actions" (missing rewards -> 0, flags -> False). Any unreadable file, missing key,
    wrong dtype or non-finite reward raises a one-line DatasetError naming the file and what was expected
    (actions are checked against the action space by the caller: spaces.check_actions)."""
    if not path.is_file():
        raise DatasetError(f"missing {path}: every episode video needs its arrays file beside it")
    expected = "expected a zip of named arrays, as numpy.savez writes"
    try:
        z = np.load(path, allow_pickle=False)
        if isinstance(z, np.lib.npyio.NpzFile):
            with z:
                d = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DatasetError(f"{path} is not a readable .npz ({first_line(e)}); {expected}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path} holds a single array, not named arrays; {expected}")
    required = NATIVE_KEYS if native else ("actions",)
    missing = [k for k in required if k not in d]
    if missing:
        raise DatasetError(f"{path} lacks {missing} (has {sorted(d)}); expected arrays {list(required)}"
                           + (", optional state, frame_sums and episode_start (see data/README.md)"
                              if native else ""))
    actions = _typed(path, "actions", d["actions"], "biuf", "integers [N] or floats [N, *shape]")
    n = len(actions)
    rewards = _typed(path, "rewards", d.get("rewards", np.zeros(n, np.float32)), "biuf", "numbers [N]")
    if not np.isfinite(rewards.astype(np.float64)).all():
        raise DatasetError(f"{path}: 'rewards' contain NaN or inf; expected finite numbers [N]")
    flags = {k: _typed(path, k, d.get(k, np.zeros(n, bool)), "biu", "bool [N]") for k in ("terminated", "truncated")}
    for k, v in flags.items():
        if v.dtype.kind != "b" and not np.isin(v, (0, 1)).all():
            raise DatasetError(f"{path}: '{k}' holds values other than 0/1; expected bool [N]")
    state = _typed(path, "state", d["state"], "biuf", "numbers [N+1, d]") if "state" in d else None
    sums = _typed(path, "frame_sums", d["frame_sums"], "iu", "int64 [N+1]") if "frame_sums" in d else None
    start = d.get("episode_start")
    if start is not None and (start.dtype != np.uint8 or start.ndim != 1):
        raise DatasetError(f"{path}: 'episode_start' is {start.dtype} {list(start.shape)}; expected uint8 [n] "
                           "(an env snapshot, see data/README.md)")
    return EpisodeArrays(
        actions=actions,
        rewards=rewards.astype(np.float32),
        terminated=flags["terminated"].astype(bool),
        truncated=flags["truncated"].astype(bool),
        state=None if state is None else state.astype(np.float32),
        frame_sums=None if sums is None else sums.astype(np.int64),
        episode_start=start,
    )


def load_external_arrays(video: Path) -> EpisodeArrays:
    npz, npy = video.with_suffix(".npz"), video.with_suffix(".npy")
    if npz.is_file():
        a = load_npz(npz, native=False)
    elif npy.is_file():
        try:
            actions = np.load(npy, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise DatasetError(f"{npy} is not a readable .npy array (as numpy.save writes): {first_line(e)}") from None
        actions = _typed(npy, "actions", np.asarray(actions), "biuf", "integers [N] or floats [N, *shape]")
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
