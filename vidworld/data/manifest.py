"""manifest.json of a native episode store: its format, and reading it with checks that name what is wrong.

Keys (data/README.md): format, version, env_id, frame_size, fps, action_space, meta, episodes, and
`next_episode` (optional: written only when an interrupted write burnt numbers above the listed episodes;
see data/recovery.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidworld.data.errors import DatasetError
from vidworld.data.spaces import action_space_from_json

FORMAT = "vidworld.episodes"
VERSION = 1
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # an episode name is a file stem in episodes/

# key -> (accepted types, what the error says is expected); checked by read_manifest.
_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "env_id": ((str, type(None)), "a gymnasium id (string) or null"),
    "frame_size": ((int,), "a positive integer"),
    "fps": ((int, float), "a positive number"),
    "episodes": ((list,), "a list of episode entries"),
    "meta": ((dict,), "an object"),
    "next_episode": ((int,), "a non-negative integer"),
}
_DEFAULTS = {"meta": {}, "next_episode": 0}


@dataclass(frozen=True)
class EpisodeInfo:
    """One manifest entry: `length` = N transitions (N actions, N+1 frames)."""

    name: str
    length: int
    episode_return: float
    extra: dict = field(default_factory=dict)


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest at `path`, its top-level keys checked (episode entries: `entry_infos`)."""
    try:
        m = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path} is not valid JSON ({e}); expected the manifest of an episode store") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise DatasetError(f"{path} is not a vidworld episode manifest (expected a JSON object with "
                           f'"format": "{FORMAT}"; see data/README.md)')
    if m.get("version") != VERSION:
        raise DatasetError(f"{path} has format version {m.get('version')}; this vidworld reads {VERSION}")
    missing = [k for k in ("env_id", "frame_size", "fps", "action_space", "episodes") if k not in m]
    if missing:
        raise DatasetError(f"{path} lacks keys {missing}; expected format, version, env_id, frame_size, fps, "
                           "action_space, episodes (see data/README.md)")
    for key, (types, what) in _FIELDS.items():
        v = m.get(key, _DEFAULTS.get(key))
        ok = isinstance(v, types) and not isinstance(v, bool)
        if ok and key in ("frame_size", "fps"):
            ok = v > 0
        if ok and key == "next_episode":
            ok = v >= 0
        if not ok:
            raise DatasetError(f"{path}: {key} is {v!r}; expected {what}")
    try:
        action_space_from_json(m["action_space"])
    except DatasetError as e:
        raise DatasetError(f"{path}: {e}") from None
    return m


def entry_infos(entries: list[Any], path: Path) -> list[EpisodeInfo]:
    """The checked episode entries: {"name": "ep_000000", "length": N, "return": R, ...extra}, names unique."""
    infos, seen = [], set()
    for i, entry in enumerate(entries):
        ok = (isinstance(entry, dict) and isinstance(entry.get("name"), str)
              and _SAFE_NAME.match(entry["name"]) and isinstance(entry.get("length"), int)
              and not isinstance(entry.get("length"), bool) and entry["length"] >= 0
              and isinstance(entry.get("return"), (int, float)))
        if not ok:
            raise DatasetError(f"{path}: episode entry {i} is {entry!r}; expected "
                               '{"name": "ep_000000", "length": N >= 0, "return": R} (name: a file stem)')
        if entry["name"] in seen:
            raise DatasetError(f"{path}: episode {entry['name']!r} is listed twice; names must be unique")
        seen.add(entry["name"])
        extra = {k: v for k, v in entry.items() if k not in ("name", "length", "return")}
        infos.append(EpisodeInfo(entry["name"], entry["length"], float(entry["return"]), extra))
    return infos
