"""Reading a saved world-model folder safely: `world_model.json` and the weight parts inside it.

Every failure a damaged or foreign folder can cause (missing or non-JSON `world_model.json`, a kind or
format version this code does not know, deleted / truncated / garbage weights, weights whose shapes differ
from their config) becomes one ValueError / FileNotFoundError naming the file and what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
INFO_FILE = "world_model.json"


def read_info(path: str | Path) -> dict[str, Any]:
    """The parsed `world_model.json` of folder `path` (any kind)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"world model folder not found: {path}")
    if not path.is_dir():
        raise ValueError(f"{path} is a file, expected a world model folder (with {INFO_FILE})")
    info_file = path / INFO_FILE
    if not info_file.is_file():
        raise ValueError(f"{path} is not a vidworld world model: missing {INFO_FILE}")
    try:
        info = json.loads(info_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{info_file}: not valid JSON ({e})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{info_file}: expected a JSON object, got {type(info).__name__}")
    kind = info.get("kind")
    if kind is not None and not isinstance(kind, str):
        from vidworld.world_models.registry import KINDS

        raise ValueError(f"{info_file}: 'kind' is {kind!r}; expected a string, one of {sorted(KINDS)}")
    return info


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_common_fields(info: dict[str, Any], info_file: Path) -> None:
    """The fields every kind saves and generic code reads (`action_spec`, `meta`): a wrong type there would
    surface far away as a TypeError (comparing "two" with 2) or a model applied to the wrong env."""
    spec = info.get("action_spec")
    if spec is not None:
        if not isinstance(spec, dict):
            raise ValueError(f"{info_file}: 'action_spec' is {spec!r}; expected an object like "
                             '{"kind": "discrete", "n": 2}')
        if spec.get("kind", "discrete") == "discrete" and not (_is_int(spec.get("n")) and spec["n"] >= 1):
            raise ValueError(f"{info_file}: action_spec.n is {spec.get('n')!r}; expected the number of discrete "
                             "actions, an integer >= 1")
    meta = info.get("meta")
    if meta is not None:
        if not isinstance(meta, dict):
            raise ValueError(f"{info_file}: 'meta' is {meta!r}; expected an object (env_id, dataset, ...)")
        for key in ("env_id", "dataset"):
            value = meta.get(key)
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise ValueError(f"{info_file}: meta.{key} is {value!r}; expected a non-empty string or null")
        fraction, seed = meta.get("val_fraction"), meta.get("split_seed")
        if fraction is not None and not (isinstance(fraction, (int, float)) and not isinstance(fraction, bool)
                                         and 0 <= fraction < 1):
            raise ValueError(f"{info_file}: meta.val_fraction is {fraction!r}; expected a number in [0, 1)")
        if seed is not None and not _is_int(seed):
            raise ValueError(f"{info_file}: meta.split_seed is {seed!r}; expected an integer")


def read_model_info(path: str | Path, kind: str, format_version: int) -> dict[str, Any]:
    """`world_model.json` of a folder that must hold a model of `kind`, saved by format <= `format_version`."""
    from vidworld.world_models.registry import canonical_kind

    info = read_info(path)
    info_file = Path(path) / INFO_FILE
    found = canonical_kind(info.get("kind"), info_file)
    if found != kind:
        raise ValueError(f"{info_file}: kind {found!r}, expected {kind!r}")
    version = info.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{info_file}: format_version {version!r} is not a positive integer")
    if version > format_version:
        raise ValueError(f"{info_file}: format_version {version} is newer than this vidworld reads "
                         f"(<= {format_version}); upgrade vidworld to load it")
    check_common_fields(info, info_file)
    return info


def load_part(cls: type[T], folder: Path, **kwargs: Any) -> T:
    """`cls.from_pretrained(folder)` (a diffusers ModelMixin part), with any failure named by its folder."""
    if not folder.is_dir():
        raise ValueError(f"world model part missing: {folder} (expected a folder saved by {cls.__name__})")
    try:
        part = cls.from_pretrained(folder, **kwargs)  # type: ignore[attr-defined]
    except Exception as e:  # OSError, SafetensorError, JSONDecodeError, shape-mismatch ValueError, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{folder}: cannot load its {cls.__name__} weights/config ({type(e).__name__}: "
                         f"{first[:300]}); the folder is damaged or was saved by another model") from None
    # diffusers records where a part was loaded from; saved again, that absolute path would make a model
    # folder depend on where (and whether) it was resumed
    config = getattr(part, "_internal_dict", None)
    if config is not None and "_name_or_path" in config:
        from diffusers.configuration_utils import FrozenDict

        part._internal_dict = FrozenDict({k: v for k, v in config.items() if k != "_name_or_path"})
    return part
