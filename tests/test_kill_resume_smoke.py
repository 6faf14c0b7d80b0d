"""Smoke run of bench/kill_resume.py (the full benchmark kills `train` and `collect` 30 times; here once):
`vidworld collect` (80 steps) is SIGKILLed while its second episode's video is being written, run again, and the
store must be clean (no leftovers, every episode loads, no reused number, survivors equal an uninterrupted
run's). A few seconds: three short collect processes."""

from __future__ import annotations

from pathlib import Path

from bench.kill_resume import Appears, run_collect_trial


def test_collect_killed_mid_write_is_repaired(tmp_path: Path) -> None:
    def kill_when(out: Path) -> Appears:
        return Appears(out / "episodes", r"^\.ep_\d+\.tmp.*\.mp4$", nth=2)

    ok, line = run_collect_trial(0, "mp4-temp", None, kill_when, 0.0, tmp_path, seed=7, steps=80)
    assert ok, line
