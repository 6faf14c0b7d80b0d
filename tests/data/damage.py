"""Helpers that damage a store on disk the way users and crashes do (imported by the data tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def edit_manifest(root: Path, **changes) -> dict:
    """Rewrite root/manifest.json with top-level keys changed; returns the new manifest."""
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))
    return manifest


def edit_npz(path: Path, drop: tuple[str, ...] = (), **arrays) -> None:
    """Rewrite an episode npz with some arrays replaced or dropped."""
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    d.update(arrays)
    np.savez(path, **{k: v for k, v in d.items() if k not in drop})
