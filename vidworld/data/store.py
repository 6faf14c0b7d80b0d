"""Episode store: a dataset folder of episodes (lossless mp4 frames + npz arrays + manifest.json).

Native layout (see data/README.md):

    <root>/manifest.json               format, version, env_id, frame_size, fps, action_space, meta, episodes
    <root>/episodes/ep_000000.mp4      frames obs_0..obs_N: N+1 frames uint8 [S, S, 3] (lossless H.264 RGB)
    <root>/episodes/ep_000000.npz      actions [N], rewards float32 [N], terminated bool [N], truncated bool [N],
                                       optional state float32 [N+1, d], frame_sums int64 [N+1]

`append` writes the mp4, then the npz, then the manifest, each to a temp file renamed into place: a crash
leaves a valid dataset of the episodes finished before it (files of an unfinished append are never listed
in the manifest and their numbers are never reused). One writer at a time per folder.

`frame_sums` (byte sum of each frame as written) lets readers detect corruption that the decoder does not
report (a damaged mp4 can decode "successfully" into wrong pixels); the codec is exact, so sums must match.

External folders (`*.mp4` + sibling `<stem>.npz` / `<stem>.npy`, no manifest) open read-only through the
same class (`_open_external`; rules in data/README.md).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidworld.atomic import atomic_write_text
from vidworld.data.arrays import (
    EpisodeArrays,
    check_frame_sums,
    check_lengths,
    drop_last,
    frame_sums,
    load_external_arrays,
    load_npz,
    save_npz,
)
from vidworld.data.errors import DatasetError
from vidworld.data.spaces import (
    action_space_from_json,
    action_space_to_json,
    check_actions,
    infer_action_space,
)
from vidworld.data.video import FrameReader, VideoReadError, write_video

FORMAT = "vidworld.episodes"
VERSION = 1
_EP_FILE = re.compile(r"^ep_(\d+)\.(mp4|npz)$")


@dataclass(frozen=True)
class EpisodeInfo:
    """One manifest entry: `length` = N transitions (N actions, N+1 frames)."""

    name: str
    length: int
    episode_return: float
    extra: dict = field(default_factory=dict)


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
        space = action_space if isinstance(action_space, dict) else action_space_to_json(action_space)
        action_space_from_json(space)  # validate
        manifest = {"env_id": env_id, "frame_size": frame_size, "fps": fps,
                    "action_space": space, "meta": meta or {}, "episodes": []}
        store = cls(root, manifest)
        (root / "episodes").mkdir(parents=True, exist_ok=True)
        store._write_manifest()
        return store

    @classmethod
    def open(cls, path: str | os.PathLike, skip_corrupt: bool = False) -> EpisodeStore:
        """Open a native store (manifest.json) or an external folder of mp4s. Every episode is checked
        (files present and readable, frame count N+1, frame size, array lengths); an invalid one raises
        DatasetError naming the file, or with `skip_corrupt` is left out, listed in `skipped` and warned."""
        root = Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"no dataset at {root}: folder does not exist")
        if (root / "manifest.json").is_file():
            store = cls._open_native(root)
        elif any(root.glob("*.mp4")):
            store = cls._open_external(root, skip_corrupt)
        else:
            raise DatasetError(f"{root} is not a dataset: no manifest.json and no *.mp4 files in it")
        if not store.external:
            for entry in store._entries:
                try:
                    info = EpisodeInfo(str(entry["name"]), int(entry["length"]), float(entry["return"]),
                                       {k: v for k, v in entry.items() if k not in ("name", "length", "return")})
                except (KeyError, TypeError, ValueError, AttributeError):
                    raise DatasetError(f"{root / 'manifest.json'}: bad episode entry {entry!r}") from None
                video, data = store._paths(info.name)
                store._add_checked(info, video, lambda d=data: load_npz(d), skip_corrupt)
        if store.skipped:
            listing = "; ".join(f"{s.name}: {s.reason}" for s in store.skipped[:5])
            warnings.warn(f"skipped {len(store.skipped)} invalid episode(s) in {root}: {listing}", stacklevel=2)
        return store

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, env_id: str, frame_size: int, fps: float,
                       action_space: Any, meta: dict | None = None) -> EpisodeStore:
        """Open the store at `path` if there is one (it must match env/frame size/actions), else create it."""
        if not (Path(path) / "manifest.json").exists():
            return cls.create(path, env_id, frame_size, fps, action_space, meta)
        store = cls.open(path)
        space = action_space if isinstance(action_space, dict) else action_space_to_json(action_space)
        have = (store.env_id, store.frame_shape, store.action_space_json)
        want = (env_id, (frame_size, frame_size), space)
        if have != want:
            raise DatasetError(f"{path} holds env_id={have[0]} frames {have[1]} actions {have[2]}; "
                               f"cannot append env_id={want[0]} frames {want[1]} actions {want[2]}")
        return store

    @classmethod
    def _open_native(cls, root: Path) -> EpisodeStore:
        path = root / "manifest.json"
        try:
            m = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DatasetError(f"{path} is not valid JSON: {e}") from None
        if not isinstance(m, dict) or m.get("format") != FORMAT:
            raise DatasetError(f"{path} is not a vidworld episode manifest (format != {FORMAT!r})")
        if m.get("version") != VERSION:
            raise DatasetError(f"{path} has format version {m.get('version')}; this vidworld reads {VERSION}")
        missing = [k for k in ("env_id", "frame_size", "fps", "action_space", "episodes") if k not in m]
        if missing:
            raise DatasetError(f"{path} lacks keys {missing}")
        action_space_from_json(m["action_space"])
        return cls(root, m)

    @classmethod
    def _open_external(cls, root: Path, skip_corrupt: bool) -> EpisodeStore:
        """A folder of `<stem>.mp4` + `<stem>.npz` (actions, optional rewards/terminated/truncated/state) or
        `<stem>.npy` (actions). N+1 frames for N actions, or N frames: then the last action (and its reward
        and flags) is dropped, as no frame shows its outcome. Missing flags: terminated False, truncated
        only on the last step. Frame size and fps come from the first readable video; integer actions
        give a discrete space with n = max + 1, float actions a box bounded by the values seen."""
        found: list[tuple[str, Path, EpisodeArrays]] = []
        bad: list[SkippedEpisode] = []
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
                bad.append(SkippedEpisode(video.stem, str(e)))
        if not found:
            raise DatasetError(f"{root}: no readable episode among its *.mp4 files ({bad[:3]})")
        space = infer_action_space([a.actions for _, _, a in found], root)
        inferred = {"env_id": None, "frame_shape": shape, "fps": fps, "action_space": space, "episodes": []}
        store = cls(root, inferred, external=True)
        store.skipped = bad
        for name, video, a in found:
            a = EpisodeArrays(check_actions(a.actions, space), a.rewards, a.terminated, a.truncated, a.state)
            store.episodes.append(EpisodeInfo(name, len(a.actions), float(a.rewards.sum())))
            store._videos.append(video)
            store._arrays.append(a)
        return store

    # ---------------------------------------------------------------- writing
    def append(self, frames: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: np.ndarray,
               truncated: np.ndarray, state: np.ndarray | None = None, extra: dict | None = None
               ) -> EpisodeInfo:
        """Add one episode: frames uint8 [N+1, S, S, 3], actions [N], rewards/terminated/truncated [N],
        state float32 [N+1, d] (optional), extra: JSON-able fields for its manifest entry."""
        if self.external:
            raise DatasetError(f"{self.root} is an external folder (no manifest): it is read-only")
        frames = np.asarray(frames)
        h, w = self.frame_shape
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (h, w, 3):
            raise DatasetError(f"frames must be uint8 [N+1, {h}, {w}, 3] for {self.root} "
                               f"(frame_size {h}), got {frames.dtype} {frames.shape}")
        arrays = EpisodeArrays(
            actions=check_actions(actions, self.action_space_json),
            rewards=np.asarray(rewards, np.float32),
            terminated=np.asarray(terminated, bool),
            truncated=np.asarray(truncated, bool),
            state=None if state is None else np.asarray(state, np.float32),
            frame_sums=frame_sums(frames),
        )
        n = len(arrays.actions)
        if n < 1:
            raise DatasetError("an episode needs at least one action (two frames)")
        check_lengths(arrays, len(frames), "append")
        name = f"ep_{self.next_index():06d}"
        video, data = self._paths(name)
        write_video(video, frames, self.fps)
        save_npz(data, arrays)
        info = EpisodeInfo(name, n, float(arrays.rewards.sum()), dict(extra or {}))
        self._entries.append({"name": name, "length": n, "return": info.episode_return, **info.extra})
        self._write_manifest()  # last: the episode exists only once the manifest lists it
        self.episodes.append(info)
        self._videos.append(video)
        self._arrays.append(arrays)
        return info

    def next_index(self) -> int:
        """1 + the largest number used by the manifest or any file in episodes/ (never reuse a number)."""
        used = [int(e["name"][3:]) for e in self._entries if re.fullmatch(r"ep_\d+", e["name"])]
        folder = self.root / "episodes"
        if folder.is_dir():
            used += [int(m.group(1)) for f in os.listdir(folder) if (m := _EP_FILE.match(f))]
        return max(used, default=-1) + 1

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
        return {"format": FORMAT, "version": VERSION, "env_id": self.env_id, **size, "fps": self.fps,
                "action_space": self.action_space_json, "meta": self.meta, "episodes": self._entries}

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
        """Validate one episode's files; keep it, or skip/raise with the reason."""
        try:
            arrays = load_arrays()
            check_lengths(arrays, info.length + 1, str(video.with_suffix(".npz")))
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
        self.episodes.append(info)
        self._videos.append(video)
        self._arrays.append(arrays)
