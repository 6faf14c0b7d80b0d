"""YAML -> nested dataclasses, with `a.b=c` command-line overrides.

Each component owns its config dataclass in its own module; an experiment config composes them. This
module only knows how to fill a dataclass tree from plain values, strictly:

* unknown keys are errors naming the full dotted key and the keys that exist;
* values are checked (and, for overrides given as strings, parsed) against the field's type;
* values are checked against each field's allowed range by the dataclass itself (`__post_init__` calling
  `check_field`), which knows only its own field names: it raises FieldError("vae_steps", ...) and
  `from_dict`, which knows where the section sits, reports the key as the user writes it
  ("config key 'train.vae_steps': must be >= 1, got 0"). Out-of-range values otherwise surface minutes
  later as NaN losses or a ZeroDivisionError in the training loop;
* broken YAML is reported as one line naming the file, line and column, not a parser traceback;
* the resolved config can be written back as YAML next to every run's outputs.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vidworld.atomic import atomic_write_text

T = TypeVar("T")

MAX_SEED = 2**32  # numpy's seeding (used by accelerate.set_seed) refuses seeds outside [0, 2**32)


class ConfigError(ValueError):
    """A config file or override does not match the config schema (always one line, naming the key)."""


class FieldError(ValueError):
    """One field of a config dataclass holds a value it cannot use.

    Raised from a dataclass's own `__post_init__` (see `check_field`), where only the bare field name is
    known; `from_dict` catches it and re-raises a ConfigError with the full dotted key. Constructed directly
    (`TrainConfig(vae_steps=0)`), its message names the class instead: "TrainConfig.vae_steps: ...".
    """

    def __init__(self, field: str, problem: str, owner: str = "") -> None:
        super().__init__(f"{owner}.{field}: {problem}" if owner else f"{field}: {problem}")
        self.field, self.problem = field, problem


def _range_text(ge: float | None, gt: float | None, le: float | None, lt: float | None) -> str:
    lo = f"[{ge}" if ge is not None else f"({gt}" if gt is not None else None
    hi = f"{le}]" if le is not None else f"{lt})" if lt is not None else None
    if lo and hi:
        return f"must be in {lo}, {hi}"
    if lo:
        return f"must be >= {ge}" if ge is not None else f"must be > {gt}"
    return f"must be <= {le}" if le is not None else f"must be < {lt}"


def check_sizes(cfg: Any, name: str, minimum: int = 1, allow_empty: bool = False) -> None:
    """Raise FieldError unless `cfg.<name>` is a list of ints >= `minimum` (layer widths, blocks per level)."""
    values = list(getattr(cfg, name))
    if not values and not allow_empty:
        raise FieldError(name, "must list at least one size, got []", type(cfg).__name__)
    bad = [v for v in values if not isinstance(v, int) or v < minimum]
    if bad:
        raise FieldError(name, f"every entry must be an integer >= {minimum}, got {values}", type(cfg).__name__)


def check_field(
    cfg: Any,
    name: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    one_of: Sequence[Any] | None = None,
    note: str = "",
) -> None:
    """Raise FieldError unless `cfg.<name>` is in range (ge/gt/le/lt bounds) or one of `one_of`.

    Floats must also be finite. `note` explains a special value, e.g. "0 = the model's own setting".
    Call it from a config dataclass's `__post_init__`, one line per field.
    """
    value = getattr(cfg, name)
    owner = type(cfg).__name__
    hint = f" ({note})" if note else ""
    if one_of is not None:
        if value not in one_of:
            raise FieldError(name, f"must be one of {list(one_of)}{hint}, got {value!r}", owner)
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldError(name, f"must be a finite number{hint}, got {value}", owner)
    ok = ((ge is None or value >= ge) and (gt is None or value > gt)
          and (le is None or value <= le) and (lt is None or value < lt))
    if not ok:
        raise FieldError(name, f"{_range_text(ge, gt, le, lt)}{hint}, got {value!r}", owner)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert `value` to the annotated type `tp`, raising ConfigError naming `key`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"config key '{key}': {value!r} matches none of {_type_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"config key '{key}': {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, prefix=key)
    if origin in (list, tuple):
        if isinstance(value, str):
            raise ConfigError(f"config key '{key}': expected a list, got string {value!r}")
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"config key '{key}': expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}': expected bool (true/false), got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"config key '{key}': expected int, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as a string; Python reads it as 0.001
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}': expected float, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key '{key}': expected str, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"config key '{key}': cannot use {value!r} as {_type_name(tp)}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def from_dict(cls: type[T], data: dict[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass `cls` from a nested dict; unknown keys and wrong types raise ConfigError."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix or '<root>'}': expected a mapping, got {data!r}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = f"'{prefix}.{unknown[0]}'" if prefix else f"'{unknown[0]}'"
        raise ConfigError(f"unknown config key {where}; known keys under '{prefix or '<root>'}': {names}")
    kwargs = {}
    defaults = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        if name in data:
            value = data[name]
            factory = defaults[name].default_factory
            if isinstance(value, dict) and factory is not dataclasses.MISSING:
                # a partial section starts from the field's OWN default (e.g. PlanConfig.cem's tuned
                # CEMConfig), not from the nested class's bare defaults
                default = factory()
                if dataclasses.is_dataclass(default):
                    value = _deep_merge(to_dict(default), value)
            kwargs[name] = _coerce(value, hints[name], f"{prefix}.{name}" if prefix else name)
    section = prefix or "<root>"
    try:
        return cls(**kwargs)
    except FieldError as e:  # the dataclass knows the field, we know where its section sits
        raise ConfigError(f"config key '{prefix + '.' if prefix else ''}{e.field}': {e.problem}") from None
    except ConfigError:  # a nested section already named its key
        raise
    except TypeError as e:  # missing required field
        raise ConfigError(f"config section '{section}': {e}") from None
    except ValueError as e:  # a component's own check that does not use FieldError (yet)
        # "CEMConfig.horizon must be >= 1, got 0" -> "config key 'plan.cem.horizon': must be >= 1, got 0"
        m = re.match(rf"{cls.__name__}\.(\w+):? (.*)", str(e), re.DOTALL)
        # "num_steps must be >= 1, got 0" / "model.context_length must be ...": a bare field name
        m = m or re.match(rf"(?:{re.escape(prefix)}\.)?(\w+):? (must .*)", str(e), re.DOTALL)
        if m and m.group(1) in names:
            key = f"{prefix}.{m.group(1)}" if prefix else m.group(1)
            raise ConfigError(f"config key '{key}': {m.group(2)}") from None
        raise ConfigError(f"config section '{section}': {e}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass tree -> plain dict (tuples become lists, so it round-trips through YAML)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.sub=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {item!r}: the value is not valid YAML: {_yaml_problem(e)[1]}") from None
    return key.split("."), value


def _yaml_problem(e: yaml.YAMLError) -> tuple[str, str]:
    """(', line L, column C' or '', one-line problem) from a PyYAML error, 1-based like an editor."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None)
    if mark is None or problem is None:  # e.g. ReaderError (a control character): no mark, just text
        return "", " ".join(str(e).split())
    where = f", line {mark.line + 1}, column {mark.column + 1}"
    if "'\\t'" in problem:
        problem += " (YAML indentation must use spaces, not tabs)"
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and cmark is not None:  # e.g. where the unclosed bracket or quote was opened
        problem += f" ({context} started at line {cmark.line + 1}, column {cmark.column + 1})"
    return where, problem


def apply_overrides(data: dict[str, Any], overrides: list[str], cls: type | None = None) -> dict[str, Any]:
    """Apply `a.b=c` overrides (values parsed as YAML scalars/lists) to a nested dict, in place."""
    for item in overrides:
        path, value = _parse_override(item)
        node = data
        sub_cls = cls
        for i, part in enumerate(path[:-1]):
            if sub_cls is not None:
                hints = _hints(sub_cls)
                if part not in hints:
                    raise ConfigError(f"unknown config key '{'.'.join(path[: i + 1])}' in override {item!r}")
                sub_cls = hints[part] if dataclasses.is_dataclass(hints[part]) else None
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {item!r}: '{'.'.join(path[: i + 1])}' is not a section")
            node = nxt
        if sub_cls is not None and path[-1] in _hints(sub_cls):
            tp = _hints(sub_cls)[path[-1]]
            # A YAML-parsed "3" for a str field should stay a string.
            if tp is str and not isinstance(value, str):
                value = item.split("=", 1)[1]
        node[path[-1]] = value
    return data


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> T:
    """Load YAML `path` (optional) into `cls`, then apply `key.sub=value` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if p.is_dir():
            raise ConfigError(f"config file {p} is a directory; expected a YAML file")
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            where, problem = _yaml_problem(e)
            raise ConfigError(f"config file {p}{where}: invalid YAML: {problem}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"config file {p}: not UTF-8 text (byte {e.start}); expected YAML") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {p}: expected a mapping at top level, got {type(loaded).__name__}")
        data = loaded or {}
    apply_overrides(data, overrides or [], cls)
    return from_dict(cls, data)


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
