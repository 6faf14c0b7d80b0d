"""External episode folders: `<stem>.mp4` + sibling `<stem>.npz` (actions, optional rewards / terminated /
truncated / state) or `<stem>.npy` (actions), no manifest. Read-only; `EpisodeStore.open` serves them through
the same class (rules in data/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidworld.data.arrays import EpisodeArrays, check_lengths, drop_last, load_external_arrays
from vidworld.data.errors import DatasetError
from vidworld.data.spaces import check_actions, infer_action_space
from vidworld.data.video import FrameReader, VideoReadError


def read_external(root: Path, skip_corrupt: bool
                  ) -> tuple[dict[str, Any], list[tuple[str, Path, EpisodeArrays]], list[tuple[str, str]]]:
    """Every `<stem>.mp4` of `root` with its arrays -> (inferred manifest, [(name, video, arrays)] checked,
    [(name, reason)] skipped). N+1 frames for N actions, or N frames: then the last action (and its reward
    and flags) is dropped, as no frame shows its outcome. Missing flags: terminated False, truncated only on
    the last step. Frame size and fps come from the first readable video; integer actions give a discrete
    space with n = max + 1, float actions a box bounded by the values seen. An unreadable episode raises
    DatasetError unless `skip_corrupt`."""
    found: list[tuple[str, Path, EpisodeArrays]] = []
    bad: list[tuple[str, str]] = []
    shape = fps = None
    for video in sorted(root.glob("*.mp4")):
        try:
            arrays = load_external_arrays(video)
            reader = FrameReader(video)
            n = len(arrays.actions)
            if reader.length == n and n > 1:
                arrays = drop_last(arrays)
            elif reader.length != n + 1:
                raise DatasetError(f"{video} has {reader.length} frames for {n} actions; expected "
                                   f"N+1 = {n + 1} (or N = {n}, then the last action is dropped)")
            shape = shape or (reader.height, reader.width)
            fps = fps or reader.fps
            if (reader.height, reader.width) != shape:
                raise DatasetError(f"{video} has {reader.height}x{reader.width} frames, other videos "
                                   f"in {root} have {shape[0]}x{shape[1]}")
            check_lengths(arrays, len(arrays.actions) + 1, str(video))
            found.append((video.stem, video, arrays))
        except (DatasetError, VideoReadError, OSError) as e:
            if not skip_corrupt:
                raise DatasetError(f"invalid episode {video.stem} in {root}: {e}") from None
            bad.append((video.stem, str(e)))
    if not found:
        raise DatasetError(f"{root}: no readable episode among its *.mp4 files ({bad[:3]})")
    space = infer_action_space([a.actions for _, _, a in found], root)
    inferred = {"env_id": None, "frame_shape": shape, "fps": fps, "action_space": space, "episodes": []}
    checked = [(name, video, EpisodeArrays(check_actions(a.actions, space, f"actions of {video}", str(root)),
                                           a.rewards, a.terminated, a.truncated, a.state))
               for name, video, a in found]
    return inferred, checked, bad
