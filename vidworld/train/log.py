"""Training logs: per-window means of the losses, appended to `log.jsonl` (one JSON row per log point).

A single batch's loss every `log_every` steps is mostly noise (the EDM loss alone varies ~10x between
batches because each draws its own noise levels); the row holds the MEAN over every step since the last
row, so the curves show the trend.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from vidworld.atomic import atomic_write_text


def append_log(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def truncate_log(path: Path, step: int) -> None:
    """Drop rows logged after `step` (and a torn last line from a kill mid-write): on resume from the
    checkpoint at `step` those steps are run again and would otherwise be logged twice."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if isinstance(row, dict) and int(row.get("step", 0)) <= step:
            keep.append(line)
    atomic_write_text(path, "".join(f"{line}\n" for line in keep))


class WindowMean:
    """add(**values) every step; pop() -> {key: mean since the last pop} and start a new window."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def add(self, **values: float) -> None:
        for k, v in values.items():
            self._sums[k] += float(v)
            self._counts[k] += 1

    def state_dict(self) -> dict:
        """Checkpointed with the training state, so a window cut by a kill resumes with its partial sums."""
        return {"sums": dict(self._sums), "counts": dict(self._counts)}

    def load_state_dict(self, state: dict) -> None:
        self._sums = defaultdict(float, state["sums"])
        self._counts = defaultdict(int, state["counts"])

    def pop(self) -> dict[str, float]:
        out = {k: self._sums[k] / self._counts[k] for k in self._sums}
        self._sums.clear()
        self._counts.clear()
        return out
