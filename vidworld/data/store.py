"""Episode store: a dataset folder of episodes (lossless mp4 frames + npz arrays + manifest.json).

Native layout (see data/README.md):

    <root>/manifest.json               format, version, env_id, frame_size, fps, action_space, meta, episodes
    <root>/episodes/ep_000000.mp4      frames obs_0..obs_N: N+1 frames uint8 [S, S, 3] (lossless H.264 RGB)
    <root>/episodes/ep_000000.npz      actions [N], rewards float32 [N], terminated bool [N], truncated bool [N],
                                       optional state float32 [N+1, d], frame_sums int64 [N+1]

`append` writes the mp4, then the npz, then the manifest, each to a temp file renamed into place: a crash
leaves a valid dataset of the episodes finished before it (files of an unfinished append are never listed
in the manifest and their numbers are never reused). What a killed writer leaves (temps, finished but
unlisted episodes) is repaired when the folder is next opened for appending (data/recovery.py). One
writer at a time per folder.

`frame_sums` (byte sum of each frame as written) lets readers detect corruption that the decoder does not
report (a damaged mp4 can decode "successfully" into wrong pixels); the codec is exact, so sums must match.

External folders (`*.mp4` + sibling `<stem>.npz` / `<stem>.npy`, no manifest) open read-only through the
same class (`_open_external`, read by data/external.py; rules in data/README.md).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from vidworld.atomic import atomic_write_text, remove_stale_temps
from vidworld.data.arrays import EpisodeArrays, check_frame_sums, check_lengths, frame_sums, load_npz, save_npz
from vidworld.data.errors import DatasetError
from vidworld.data.external import read_external
from vidworld.data.manifest import FORMAT, VERSION, EpisodeInfo, entry_infos, read_manifest
from vidworld.data.recovery import RepairReport, episode_number, find_leftovers, verify_orphan
from vidworld.data.spaces import (
    action_space_from_json,
    action_space_to_json,
    check_actions,
)
from vidworld.data.video import FrameReader, VideoReadError, write_video


@dataclass(frozen=True)
class Episode:
    """A whole episode: frames uint8 [N+1, H, W, 3]; frames[i] is observed before actions[i]."""

    name: str
    frames: np.ndarray
    arrays: EpisodeArrays


@dataclass(frozen=True)
class SkippedEpisode:
    name: str
    reason: str


class EpisodeStore:
    """A dataset folder. Build with `EpisodeStore.create(...)`, `EpisodeStore.open(path)` or
    `EpisodeStore.open_or_create(...)`. `episodes` lists the valid episodes (index i everywhere below)."""

    def __init__(self, root: Path, manifest: dict[str, Any], external: bool = False):
        # Use the classmethods; this only holds state.
        self.root = root
        self.env_id: str | None = manifest["env_id"]
        # Native manifests hold a square frame_size; external folders may infer a non-square shape.
        shape = manifest.get("frame_shape") or [manifest["frame_size"]] * 2
        self.frame_shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.fps: float = manifest["fps"]
        self.action_space_json: dict = manifest["action_space"]
        self.meta: dict = manifest.get("meta", {})
        self.external = external
        self._entries: list[dict] = list(manifest["episodes"])  # all manifest entries, kept on rewrite
        self.episodes: list[EpisodeInfo] = []
        self.skipped: list[SkippedEpisode] = []
        self.repaired = RepairReport()  # what opening for appending recovered/removed (data/recovery.py)
        # Numbers below this are used or were burnt by an interrupted write: never handed out again.
        self._next_episode: int = int(manifest.get("next_episode", 0))
        self._videos: list[Path] = []
        self._arrays: list[EpisodeArrays] = []

    # ---------------------------------------------------------------- building
    @classmethod
    def create(cls, path: str | os.PathLike, env_id: str, frame_size: int, fps: float, action_space: Any,
               meta: dict | None = None) -> EpisodeStore:
        """New empty store at `path` (a folder that holds no dataset yet). `action_space`: gymnasium space or
        its JSON dict ({"type": "discrete", "n": 2} / {"type": "box", "shape", "low", "high"})."""
        root = Path(path)
        if (root / "manifest.json").exists():
            raise DatasetError(f"{root} already holds a dataset (manifest.json); open it to append")
        if root.is_dir() and any(root.glob("*.mp4")):  # a manifest here would hide those videos
            raise DatasetError(f"{root} holds *.mp4 files without a manifest.json: an external dataset, which "
                               "is read-only; collect into another folder")
        space = action_space if isinstance(action_space, dict) else action_space_to_json(action_space)
        action_space_from_json(space)  # validate
        manifest = {"env_id": env_id, "frame_size": frame_size, "fps": fps,
                    "action_space": space, "meta": meta or {}, "episodes": []}
        store = cls(root, manifest)
        (root / "episodes").mkdir(parents=True, exist_ok=True)
        remove_stale_temps(root, names=("manifest",))  # a create killed before its manifest's rename
        store._write_manifest()
        return store

    @classmethod
    def open(cls, path: str | os.PathLike, skip_corrupt: bool = False, repair: bool = False) -> EpisodeStore:
        """Open a native store (manifest.json) or an external folder of mp4s. Every episode is checked
        (files present and readable, frame count N+1, frame size, array keys/dtypes/lengths); an invalid one
        raises DatasetError naming the file, or with `skip_corrupt` is left out, listed in `skipped` and
        warned. Actions outside the manifest's action space always raise (the manifest or the data is
        wrong; skipping would hide it). Files an interrupted write left (data/recovery.py) are warned about;
        with `repair` (what opening to append does) complete ones are recovered into the manifest and the
        rest deleted, reported in `repaired`."""
        store = cls._load(Path(path), skip_corrupt, for_append=repair)
        if repair:
            store._repair()
        elif not store.external and (left := find_leftovers(store.root, set(store.listed_names))):
            warnings.warn(f"{store.root}: an interrupted write left {left.describe()}; they are ignored here, "
                          "and recovered (complete episodes) or removed the next time the folder is opened "
                          "for appending (vidworld collect)", stacklevel=2)
        return store

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, env_id: str, frame_size: int, fps: float,
                       action_space: Any, meta: dict | None = None) -> EpisodeStore:
        """Open the store at `path` for appending if there is one (it must match env/frame size/actions;
        then it is repaired, see `open`), else create it."""
        if not (Path(path) / "manifest.json").exists():
            return cls.create(path, env_id, frame_size, fps, action_space, meta)
        store = cls._load(Path(path), skip_corrupt=False, for_append=True)
        space = action_space if isinstance(action_space, dict) else action_space_to_json(action_space)
        have = (store.env_id, store.frame_shape, store.action_space_json)
        want = (env_id, (frame_size, frame_size), space)
        if have != want:
            raise DatasetError(f"{path} holds env_id={have[0]} frames {have[1]} actions {have[2]}; "
                               f"cannot append env_id={want[0]} frames {want[1]} actions {want[2]}")
        store._repair()  # only once we know this run may write here
        return store

    @classmethod
    def _load(cls, root: Path, skip_corrupt: bool, for_append: bool) -> EpisodeStore:
        if not root.is_dir():
            if root.exists():
                raise DatasetError(f"{root} is a file, not a dataset folder (expected manifest.json + episodes/)")
            raise FileNotFoundError(f"no dataset at {root}: folder does not exist")
        if (root / "manifest.json").is_file():
            store = cls(root, read_manifest(root / "manifest.json"))
            for info in entry_infos(store._entries, root / "manifest.json"):
                video, data = store._paths(info.name)
                store._add_checked(info, video, lambda d=data: load_npz(d), skip_corrupt)
        elif any(root.glob("*.mp4")):
            if for_append:
                raise DatasetError(f"{root} is an external folder (no manifest.json): it is read-only")
            store = cls._open_external(root, skip_corrupt)
        else:
            raise DatasetError(f"{root} is not a dataset: no manifest.json and no *.mp4 files in it")
        if store.skipped:
            listing = "; ".join(f"{s.name}: {s.reason}" for s in store.skipped[:5])
            warnings.warn(f"skipped {len(store.skipped)} invalid episode(s) in {root}: {listing}", stacklevel=3)
        return store

    @classmethod
    def _open_external(cls, root: Path, skip_corrupt: bool) -> EpisodeStore:
        """A read-only store over an external folder (data/external.py reads and checks it)."""
        inferred, found, bad = read_external(root, skip_corrupt)
        store = cls(root, inferred, external=True)
        store.skipped = [SkippedEpisode(name, reason) for name, reason in bad]
        for name, video, a in found:
            store._keep(EpisodeInfo(name, len(a.actions), float(a.rewards.sum())), video, a)
        return store

    # ---------------------------------------------------------------- writing
    def append(self, frames: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: np.ndarray,
               truncated: np.ndarray, state: np.ndarray | None = None, extra: dict | None = None,
               episode_start: np.ndarray | None = None) -> EpisodeInfo:
        """Add one episode: frames uint8 [N+1, S, S, 3], actions [N], rewards/terminated/truncated [N],
        state float32 [N+1, d] (optional), extra: JSON-able fields for its manifest entry, episode_start
        uint8 [n] (optional: the env snapshot `reset` gave, for exact replay)."""
        if self.external:
            raise DatasetError(f"{self.root} is an external folder (no manifest): it is read-only")
        frames = np.asarray(frames)
        h, w = self.frame_shape
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (h, w, 3):
            raise DatasetError(f"frames must be uint8 [N+1, {h}, {w}, 3] for {self.root} "
                               f"(frame_size {h}), got {frames.dtype} {frames.shape}")
        arrays = EpisodeArrays(
            actions=check_actions(actions, self.action_space_json, "append", str(self.root / "manifest.json")),
            rewards=np.asarray(rewards, np.float32),
            terminated=np.asarray(terminated, bool),
            truncated=np.asarray(truncated, bool),
            state=None if state is None else np.asarray(state, np.float32),
            frame_sums=frame_sums(frames),
            episode_start=None if episode_start is None else np.asarray(episode_start, np.uint8).reshape(-1),
        )
        n = len(arrays.actions)
        if n < 1:
            raise DatasetError("an episode needs at least one action (two frames)")
        check_lengths(arrays, len(frames), "append")
        index = self.next_index()
        self._next_episode = index + 1  # burnt even if this append fails
        name = f"ep_{index:06d}"
        video, data = self._paths(name)
        info = EpisodeInfo(name, n, float(arrays.rewards.sum()), dict(extra or {}))
        entry = {"name": name, "length": n, "return": info.episode_return, **info.extra}
        try:
            write_video(video, frames, self.fps)
            save_npz(data, arrays)
            self._entries.append(entry)
            self._write_manifest()  # last: the episode exists only once the manifest lists it
        except BaseException:
            # Undo what an exception (not a kill: data/recovery.py handles those) left, keeping the number
            # burnt in the manifest; if even that fails, the next open for appending repairs it.
            if self._entries and self._entries[-1] is entry:
                self._entries.pop()
            try:
                video.unlink(missing_ok=True)
                data.unlink(missing_ok=True)
                self._write_manifest()
            except OSError:
                pass
            raise
        self._keep(info, video, arrays)
        return info

    def keep_first(self, names: list[str]) -> list[str]:
        """Roll back to exactly the episodes `names` (a prefix of `listed_names`): later ones are unlisted and
        deleted, their numbers stay burnt (a resumed online loop collects them again). Returns what went."""
        if self.listed_names[: len(names)] != list(names):
            raise DatasetError(f"{self.root}: the store does not start with the {len(names)} episodes to keep")
        extra = self.listed_names[len(names):]
        if extra:
            self._next_episode = max(self._next_episode, self._highest_listed() + 1)
            self._entries = self._entries[: len(names)]
            kept = [i for i, e in enumerate(self.episodes) if e.name not in extra]
            self.episodes, self._videos, self._arrays = ([xs[i] for i in kept]
                                                         for xs in (self.episodes, self._videos, self._arrays))
            self._write_manifest()  # first: an episode exists only while the manifest lists it
            for f in (f for name in extra for f in self._paths(name)):
                f.unlink(missing_ok=True)
        return extra

    def next_index(self) -> int:
        """Number of the next episode: above every number the manifest lists or burnt (`next_episode`) and
        every number in episodes/ in any form (episode file or temp): a number is never reused."""
        on_disk = find_leftovers(self.root, set()).highest
        return max(self._next_episode - 1, self._highest_listed(), on_disk) + 1

    def _highest_listed(self) -> int:
        return max((k for n in self.listed_names if (k := episode_number(n)) is not None), default=-1)

    @property
    def listed_names(self) -> list[str]:
        """Names of every episode the manifest lists (also the skipped ones)."""
        return [str(e["name"]) for e in self._entries]

    def _write_manifest(self) -> None:
        atomic_write_text(self.root / "manifest.json", json.dumps(self.manifest, indent=1) + "\n")

    # ---------------------------------------------------------------- reading
    def __len__(self) -> int:
        return len(self.episodes)

    @property
    def frame_size(self) -> int:
        """Side S of the square frames (external folders may hold non-square ones: see frame_shape)."""
        h, w = self.frame_shape
        if h != w:
            raise DatasetError(f"{self.root} holds non-square {h}x{w} frames; use frame_shape")
        return h

    @property
    def manifest(self) -> dict:
        """The manifest as stored (external folders: what was inferred; env_id None)."""
        h, w = self.frame_shape
        size = {"frame_size": h} if h == w else {"frame_shape": [h, w]}
        # Saved only when an interrupted write burnt numbers above the listed ones (data/recovery.py).
        burnt = {"next_episode": self._next_episode} if self._next_episode > self._highest_listed() + 1 else {}
        return {"format": FORMAT, "version": VERSION, "env_id": self.env_id, **size, "fps": self.fps,
                "action_space": self.action_space_json, "meta": self.meta, **burnt, "episodes": self._entries}

    @property
    def action_space(self):
        """The gymnasium action space of the episodes."""
        return action_space_from_json(self.action_space_json)

    def video_path(self, i: int) -> Path:
        return self._videos[i]

    def arrays(self, i: int) -> EpisodeArrays:
        """Actions/rewards/flags/state of episode i (loaded when the store was opened)."""
        return self._arrays[i]

    def load_episode(self, i: int) -> Episode:
        """Episode i with its frames decoded (uint8 [N+1, H, W, 3]), checked against the written sums."""
        arrays = self._arrays[i]
        frames = FrameReader(self._videos[i]).get(range(self.episodes[i].length + 1))
        check_frame_sums(frames, arrays.frame_sums, 0, self._videos[i])
        return Episode(self.episodes[i].name, frames, arrays)

    def _paths(self, name: str) -> tuple[Path, Path]:
        return self.root / "episodes" / f"{name}.mp4", self.root / "episodes" / f"{name}.npz"

    def _add_checked(self, info: EpisodeInfo, video: Path, load_arrays, skip_corrupt: bool) -> None:
        """Validate one episode's files; keep it, or skip/raise with the reason. Actions outside the action
        space raise even with skip_corrupt: the manifest or the data is wrong, not one damaged file."""
        npz = video.with_suffix(".npz")
        try:
            arrays = load_arrays()
            check_lengths(arrays, info.length + 1, f"{npz} (manifest length {info.length})")
            reader = FrameReader(video)
            if reader.length != info.length + 1:
                raise DatasetError(f"{video} has {reader.length} frames; its {info.length} actions need "
                                   f"{info.length + 1}")
            if (reader.height, reader.width) != self.frame_shape:
                raise DatasetError(f"{video} has {reader.height}x{reader.width} frames; the dataset's frame "
                                   f"size is {self.frame_shape[0]}x{self.frame_shape[1]}")
        except (DatasetError, VideoReadError, OSError) as e:
            if not skip_corrupt:
                raise DatasetError(f"invalid episode {info.name} in {self.root}: {e}") from None
            self.skipped.append(SkippedEpisode(info.name, str(e)))
            return
        actions = check_actions(arrays.actions, self.action_space_json, str(npz), str(self.root / "manifest.json"))
        self._keep(info, video, replace(arrays, actions=actions))

    def _keep(self, info: EpisodeInfo, video: Path, arrays: EpisodeArrays) -> None:
        self.episodes.append(info)
        self._videos.append(video)
        self._arrays.append(arrays)

    def _repair(self) -> None:
        """Recover or remove what an interrupted write left (data/recovery.py); warn what was done."""
        left = find_leftovers(self.root, set(self.listed_names))
        if not left:
            return
        self._next_episode = max(self._next_episode, left.highest + 1, self._highest_listed() + 1)
        recovered, doomed, reasons = [], [], []
        manifest = self.root / "manifest.json"
        for name in sorted(left.orphans, key=lambda n: episode_number(n)):
            try:
                arrays, video = verify_orphan(name, left.orphans[name], self.action_space_json,
                                              self.frame_shape, manifest)
            except (DatasetError, VideoReadError, OSError) as e:
                doomed += left.orphans[name]
                reasons.append(f"{name}: {e}")
                continue
            info = EpisodeInfo(name, len(arrays.actions), float(arrays.rewards.sum()))
            self._entries.append({"name": name, "length": info.length, "return": info.episode_return})
            self._keep(info, video, arrays)
            recovered.append(name)
        self._write_manifest()  # first: recovered entries and burnt numbers are saved before deleting
        for f in doomed:
            f.unlink(missing_ok=True)
        removed = doomed + remove_stale_temps(self.root / "episodes")
        removed += remove_stale_temps(self.root, names=("manifest",))
        self.repaired = RepairReport(tuple(recovered), tuple(removed), tuple(reasons))
        warnings.warn(self.repaired.describe(self.root), stacklevel=3)
