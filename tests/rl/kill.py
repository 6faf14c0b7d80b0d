"""A simulated kill of the online loop and what a resumed run must reproduce, shared by its resume tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidworld.rl import online
from vidworld.rl.replay import Replay


def run_until_killed(cfg, monkeypatch, iteration: int = 2) -> None:
    """Run `vidworld dream` and kill it (KeyboardInterrupt) right after the first episode collected after
    checkpoint `iteration` reached the store (so that episode was never checkpointed)."""
    state_file = Path(cfg.run_dir) / "dream_state" / "state.json"
    real_append = Replay.append

    def dying_append(self, ep):
        real_append(self, ep)
        if state_file.is_file() and json.loads(state_file.read_text())["iteration"] == iteration:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(Replay, "append", dying_append)
    with pytest.raises(KeyboardInterrupt):
        online.run_dream(cfg, progress=False)
    monkeypatch.setattr(Replay, "append", real_append)


def comparable_outputs(run: Path) -> tuple[list[dict], list[dict], int]:
    """A finished dream run's log rows and evaluations without their wall-clock fields, and its real steps:
    what a killed-and-resumed run must reproduce exactly (each test adds its agent / model state)."""
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    for row in log:
        row.pop("wall_minutes")
    summary = json.loads((run / "dream_summary.json").read_text())
    evals = [{k: v for k, v in e.items() if k not in ("wall_minutes", "decisions_per_s")}
             for e in summary["evaluations"]]
    return log, evals, summary["real_steps"]
