"""Write-then-rename: nothing vidworld writes is ever half-written, and nothing old is lost before the new
version is complete.

    with atomic_path("runs/x/plot.png") as tmp:      # a hidden temp name beside the target, same suffix
        fig.savefig(tmp)                              # renamed over the target only if this block succeeds
    atomic_write_text("runs/x/config.yaml", text)
    with atomic_folder("runs/x/model") as tmp:        # whole folders (a saved world model)
        model.save_pretrained(tmp)

Every temp name starts with a dot and contains ".tmp", so `remove_stale_temps` can clear what a killed
process left behind (a `kill -9` between writing and renaming) the next time a command uses that folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Matches every temp name made here: ".<name>.tmp<random><suffix>" (files and folders) and the
# ".<name>.old" folder `atomic_folder` moves aside during its swap.
_TEMP = re.compile(r"^\..+\.(tmp[0-9a-z_-]*(\.[A-Za-z0-9]+)?|old)$")


def temp_name(path: Path) -> Path:
    """A unique hidden name beside `path` keeping its suffix (writers pick the format by it). Not created
    here (mkstemp's 0600 mode would stick to the renamed file): the writer creates it with the usual umask."""
    return path.with_name(f".{path.stem}.tmp{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it over `path` when the block succeeds, delete it otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` via a temp file in the same folder and a rename (never half-written)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp folder beside `path`; on success it replaces `path` (the old one is moved aside, then
    deleted, so a crash never leaves `path` half-written or missing both versions); on failure it is removed.

        with atomic_folder("runs/x/model") as tmp:
            module.save_pretrained(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp"))
    try:
        yield tmp
        old = path.with_name(f".{path.name}.old")
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def recover_folder(path: str | os.PathLike) -> None:
    """Finish an `atomic_folder` swap a kill interrupted: if `path` is missing but its moved-aside old
    version exists, put the old version back (the new one never completed its rename)."""
    path = Path(path)
    old = path.with_name(f".{path.name}.old")
    if old.is_dir() and not path.exists():
        os.replace(old, path)


def is_temp(name: str) -> bool:
    """Whether a file/folder name is one of our write-then-rename temps."""
    return bool(_TEMP.match(name))


def remove_stale_temps(folder: str | os.PathLike, names: tuple[str, ...] | None = None) -> list[Path]:
    """Delete temp files/folders left in `folder` by a killed writer (optionally only those whose target
    name is in `names`, e.g. ("vae", "model")). Call only where no other process is writing into `folder`.
    Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    for child in folder.iterdir():  # an interrupted folder swap first gets its old version back
        if child.name.endswith(".old") and child.name.startswith("."):
            recover_folder(folder / child.name[1:-4])
    removed = []
    for child in folder.iterdir():
        if not is_temp(child.name):
            continue
        if names is not None and not any(child.name.startswith(f".{n}.") for n in names):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
        removed.append(child)
    return removed
