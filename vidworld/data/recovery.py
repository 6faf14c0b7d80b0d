"""Crash recovery for an episode store: what a killed writer (`kill -9` during `vidworld collect`) leaves.

`EpisodeStore.append` writes ep_N.mp4, then ep_N.npz, then manifest.json, each through a hidden temp file
renamed into place (vidworld.atomic). A kill can therefore leave, beside a valid dataset:
  - hidden temp files (`episodes/.ep_000007.tmp<pid>-<id>.mp4`, `.manifest.tmp<pid>-<id>.json`);
  - an *orphan*: `ep_N.mp4` (and maybe `ep_N.npz`) on disk but not listed in manifest.json.

Read-only opens only warn about these. Opening for appending (`EpisodeStore.open(path, repair=True)`, which
`open_or_create` and so `vidworld collect` use) repairs: an orphan whose two files verify (well-formed
arrays, actions inside the action space, N+1 frames of the dataset's size whose decoded byte sums equal the
npz's `frame_sums`) is listed in the manifest; every other orphan file and every temp is deleted.
Numbers are never reused: every number seen on disk in any form (listed, orphan, temp) raises the store's
`next_episode` counter, which is saved in the manifest before anything is deleted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from vidworld.atomic import is_temp
from vidworld.data.arrays import EpisodeArrays, check_frame_sums, check_lengths, load_npz
from vidworld.data.errors import DatasetError
from vidworld.data.spaces import check_actions
from vidworld.data.video import FrameReader

EPISODE_FILE = re.compile(r"^(ep_(\d+))\.(mp4|npz)$")
_EPISODE_TEMP = re.compile(r"^\.ep_(\d+)\.")


def episode_number(name: str) -> int | None:
    """42 for "ep_000042", None for names vidworld did not number."""
    m = re.fullmatch(r"ep_(\d+)", name)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Leftovers:
    """What interrupted writes left in a store folder."""

    orphans: dict[str, list[Path]]  # unlisted episode name -> its files on disk (mp4 and/or npz)
    temps: list[Path]  # hidden temp files of interrupted writes (episodes/ and the manifest's)
    highest: int  # largest episode number on disk in any form (file or temp); -1 if none

    def __bool__(self) -> bool:
        return bool(self.orphans or self.temps)

    def describe(self) -> str:
        parts = []
        if self.orphans:
            parts.append(f"{len(self.orphans)} episode(s) not listed in manifest.json "
                         f"({', '.join(sorted(self.orphans)[:5])})")
        if self.temps:
            parts.append(f"{len(self.temps)} temp file(s) ({', '.join(p.name for p in self.temps[:3])})")
        return " and ".join(parts)


def find_leftovers(root: Path, listed: set[str]) -> Leftovers:
    """Scan `root` (manifest folder) and `root/episodes` for orphans and temps; touches nothing."""
    orphans: dict[str, list[Path]] = {}
    temps: list[Path] = []
    highest = -1
    folder = root / "episodes"
    for f in sorted(os.listdir(folder)) if folder.is_dir() else []:
        if m := EPISODE_FILE.match(f):
            highest = max(highest, int(m.group(2)))
            if m.group(1) not in listed:
                orphans.setdefault(m.group(1), []).append(folder / f)
        elif is_temp(f):
            temps.append(folder / f)
            if m := _EPISODE_TEMP.match(f):
                highest = max(highest, int(m.group(1)))
    temps += [root / f for f in sorted(os.listdir(root)) if is_temp(f) and f.startswith(".manifest.")]
    return Leftovers(orphans, temps, highest)


def verify_orphan(name: str, files: list[Path], space: dict, frame_shape: tuple[int, int],
                  manifest: Path) -> tuple[EpisodeArrays, Path]:
    """The checked arrays and video of an orphan episode that is complete and provably intact; else a
    DatasetError / VideoReadError (one line) saying why it cannot be recovered."""
    video, npz = files[0].with_name(f"{name}.mp4"), files[0].with_name(f"{name}.npz")
    for f in (video, npz):
        if not f.is_file():
            raise DatasetError(f"{f} is missing (the write of {name} was interrupted)")
    arrays = load_npz(npz)
    if arrays.frame_sums is None:
        raise DatasetError(f"{npz} has no frame_sums, so {video} cannot be verified")
    actions = check_actions(arrays.actions, space, str(npz), str(manifest))
    reader = FrameReader(video)
    if (reader.height, reader.width) != frame_shape:
        raise DatasetError(f"{video} has {reader.height}x{reader.width} frames; expected "
                           f"{frame_shape[0]}x{frame_shape[1]}")
    check_lengths(arrays, reader.length, str(video))
    check_frame_sums(reader.read_all(), arrays.frame_sums, 0, video)
    return replace(arrays, actions=actions), video


@dataclass(frozen=True)
class RepairReport:
    """What opening a store for appending fixed (`EpisodeStore.repaired`)."""

    recovered: tuple[str, ...] = ()  # orphan episodes verified and added to the manifest
    removed: tuple[Path, ...] = ()  # unverifiable orphan files and stale temps deleted
    reasons: tuple[str, ...] = ()  # why each unverifiable orphan was removed

    def __bool__(self) -> bool:
        return bool(self.recovered or self.removed)

    def describe(self, root: Path) -> str:
        text = f"{root}: repaired what an interrupted write left:"
        if self.recovered:
            text += f" recovered {len(self.recovered)} complete episode(s) ({', '.join(self.recovered[:5])});"
        if self.removed:
            text += (f" removed {len(self.removed)} unverifiable or temp file(s) "
                     f"({', '.join(p.name for p in self.removed[:5])})")
        if self.reasons:
            text += f"; {'; '.join(self.reasons[:3])}"
        return text.rstrip(";")
