"""Check command-line paths BEFORE any long work starts, with one-line errors naming the argument.

Without these checks a bad `--out` is found only when the first file is written, e.g. `vidworld plan --out
results.txt/plan` failed with NotADirectoryError after ~3 minutes of episodes. Each check only looks (it
creates nothing), names the argument as the user wrote it (`what`: "--out", "run_dir", "data.path") and the
path component that is wrong, and says what was expected:

    out = check_output_dir(args.out, "--out")        # ValueError
    model = check_input_dir(args.model, "--model")   # FileNotFoundError / ValueError
    cfg = check_input_file(args.config, "config")    # FileNotFoundError / ValueError

Both error types are caught by `vidworld.cli.main` and printed as one line (exit code 2).
A check cannot rule out a race (another process removing a folder later) or a full disk; it catches the
mistakes a person makes when typing a path.
"""

from __future__ import annotations

import os
from pathlib import Path

PathLike = str | os.PathLike


def _path(path: PathLike, what: str) -> Path:
    if str(path) == "":
        raise ValueError(f"{what}: empty path")
    return Path(path)


def _first_existing(p: Path) -> Path | None:
    """The longest existing prefix of `p` (p itself or an ancestor), where a new folder would be created."""
    for q in (p, *p.parents):
        if q.exists():
            return q
    return None


def _blocking_component(p: Path) -> Path | None:
    """The nearest existing ancestor of `p` if it is not a folder (a file where a folder is needed).

    `Path.exists()` is False both for "missing" and for "under a regular file", so walk up explicitly.
    """
    for q in p.parents:
        if q.exists():
            return None if q.is_dir() else q
    return None


def _not_a_folder(q: Path) -> str:
    return f"{q} is a file, not a folder" if q.is_file() else f"{q} exists and is not a folder"


def check_output_dir(path: PathLike, what: str) -> Path:
    """Check that `path` is a writable folder or can be created as one; return it as a Path.

    Raises ValueError naming `what` and the offending component when `path` or any parent is a regular
    file (or other non-folder), when `path` is a dangling symbolic link, or when the folder (or its nearest
    existing parent, where it would be created) is not writable.
    """
    p = _path(path, what)
    if p.is_symlink() and not p.exists():
        raise ValueError(f"{what}: {p} is a broken symbolic link (to {os.readlink(p)}); expected a folder")
    if p.exists():
        if not p.is_dir():
            expected = "expected a folder (or a path where one can be created)"
            raise ValueError(f"{what}: {_not_a_folder(p)}; {expected}")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ValueError(f"{what}: folder {p} is not writable (permission denied)")
        return p
    blocker = _blocking_component(p)
    if blocker is not None:
        raise ValueError(f"{what}: cannot create folder {p}: {_not_a_folder(blocker)}")
    parent = _first_existing(p)
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what}: cannot create folder {p}: no write permission in {parent}")
    return p


def _missing(p: Path, what: str, kind: str) -> FileNotFoundError:
    blocker = _blocking_component(p)
    why = f" ({_not_a_folder(blocker)})" if blocker is not None else ""
    return FileNotFoundError(f"{what}: {kind} not found: {p}{why}")


def check_input_file(path: PathLike, what: str) -> Path:
    """Check that `path` is an existing, readable regular file; return it as a Path.

    Raises FileNotFoundError when it does not exist, ValueError when it is a folder or not readable.
    """
    p = _path(path, what)
    if not p.exists():
        raise _missing(p, what, "file")
    if p.is_dir():
        raise ValueError(f"{what}: {p} is a folder; expected a file")
    if not os.access(p, os.R_OK):
        raise ValueError(f"{what}: file {p} is not readable (permission denied)")
    return p


def check_input_dir(path: PathLike, what: str) -> Path:
    """Check that `path` is an existing folder whose contents can be read; return it as a Path.

    Raises FileNotFoundError when it does not exist, ValueError when it is a file or not readable.
    """
    p = _path(path, what)
    if not p.exists():
        raise _missing(p, what, "folder")
    if not p.is_dir():
        raise ValueError(f"{what}: {_not_a_folder(p)}; expected a folder")
    if not os.access(p, os.R_OK | os.X_OK):
        raise ValueError(f"{what}: folder {p} is not readable (permission denied)")
    return p
