"""Training logs: per-window means of the losses, appended to `log.jsonl` (one JSON row per log point).

A single batch's loss every `log_every` steps is mostly noise (the EDM loss alone varies ~10x between
batches because each draws its own noise levels); the row holds the MEAN over every step since the last
row, so the curves show the trend.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path


def append_log(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


class WindowMean:
    """add(**values) every step; pop() -> {key: mean since the last pop} and start a new window."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def add(self, **values: float) -> None:
        for k, v in values.items():
            self._sums[k] += float(v)
            self._counts[k] += 1

    def pop(self) -> dict[str, float]:
        out = {k: self._sums[k] / self._counts[k] for k in self._sums}
        self._sums.clear()
        self._counts.clear()
        return out
