"""Collecting real env episodes: exact frames on disk, appending, crash safety, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from vidworld.cli import main as cli_main
from vidworld.data.collect import CollectConfig, collect
from vidworld.data.store import EpisodeStore
from vidworld.envs.pixels import PixelEnvConfig, PixelObservation


def _spy_on_appends(monkeypatch) -> list[dict]:
    """Record what collect hands to the store, to compare with what comes back from disk."""
    written: list[dict] = []
    original = EpisodeStore.append

    def spy(self, frames, actions, rewards, terminated, truncated, state=None, extra=None, episode_start=None):
        written.append({"frames": frames.copy(), "actions": actions.copy(), "state": state})
        return original(self, frames, actions, rewards, terminated, truncated, state=state, extra=extra,
                        episode_start=episode_start)

    monkeypatch.setattr(EpisodeStore, "append", spy)
    return written


def test_cartpole_collect_reads_back_exactly(tmp_path, monkeypatch):
    written = _spy_on_appends(monkeypatch)
    cfg = CollectConfig(env=PixelEnvConfig("CartPole-v1", frame_size=32), steps=60, out=str(tmp_path / "cp"))
    result = collect(cfg, progress=False)
    store = EpisodeStore.open(tmp_path / "cp")
    assert result.steps == 60 and sum(e.length for e in store.episodes) == 60
    assert result.episodes == len(store) == len(written) >= 2
    assert result.frames == 60 + len(store) and result.frames_per_s > 0
    for i, w in enumerate(written):
        ep = store.load_episode(i)
        err = np.abs(ep.frames.astype(int) - w["frames"].astype(int))
        assert err.max() == 0, f"codec read-back error: mean {err.mean():.4f}, max {err.max()}"
        np.testing.assert_array_equal(ep.arrays.actions, w["actions"])
        assert ep.arrays.state.shape == (len(w["actions"]) + 1, 4)
        # Every episode ends exactly once: a fall (terminated) or the step budget (truncated).
        ends = ep.arrays.terminated | ep.arrays.truncated
        assert ends[-1] and not ends[:-1].any()
    assert store.arrays(len(store) - 1).truncated[-1] or store.arrays(len(store) - 1).terminated[-1]
    assert store.meta["collect"]["env"]["id"] == "CartPole-v1"


def test_second_run_appends_new_episodes(tmp_path):
    cfg = CollectConfig(env=PixelEnvConfig("CartPole-v1", frame_size=16), steps=40, out=str(tmp_path / "cp"))
    first = collect(cfg, progress=False)
    n_first = len(first.store)
    second = collect(cfg, progress=False)  # same seed, same folder
    store = EpisodeStore.open(tmp_path / "cp")
    assert len(store) == n_first + second.episodes
    assert [e.name for e in store.episodes] == [f"ep_{i:06d}" for i in range(len(store))]
    assert sum(e.length for e in store.episodes) == 80
    # Not a copy of the first run: the seed is combined with the episode number.
    assert not np.array_equal(store.arrays(0).state[0], store.arrays(n_first).state[0])


def test_crash_mid_episode_keeps_finished_episodes(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = PixelObservation.step

    def flaky(self, action):
        calls["n"] += 1
        if calls["n"] == 45:
            raise RuntimeError("simulated crash")
        return original(self, action)

    monkeypatch.setattr(PixelObservation, "step", flaky)
    cfg = CollectConfig(env=PixelEnvConfig("CartPole-v1", frame_size=16), steps=200, out=str(tmp_path / "cp"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        collect(cfg, progress=False)
    store = EpisodeStore.open(tmp_path / "cp")  # valid: only finished episodes, all readable
    assert 1 <= len(store) and sum(e.length for e in store.episodes) < 45
    for i in range(len(store)):
        assert store.load_episode(i).arrays.terminated[-1]
    assert not [p for p in (tmp_path / "cp").rglob(".*")]  # no temp files left behind


def test_minigrid_and_ale_collect(tmp_path):
    mg = collect(CollectConfig(env=PixelEnvConfig("MiniGrid-Empty-8x8-v0", frame_size=16, max_episode_steps=25),
                               steps=60, out=str(tmp_path / "mg")), progress=False)
    assert mg.store.action_space.n == 7 and mg.episodes == 3  # 25 + 25 + 10 steps
    ep = mg.store.load_episode(0)
    assert ep.frames.shape == (26, 16, 16, 3) and ep.arrays.state.shape == (26, 3)
    assert ep.arrays.truncated[-1]
    ale = collect(CollectConfig(env=PixelEnvConfig("ALE/Breakout-v5", frame_size=16), steps=30,
                                out=str(tmp_path / "ale")), progress=False)
    ep = ale.store.load_episode(0)
    assert ale.store.action_space.n == 4 and ep.frames.shape == (31, 16, 16, 3)
    assert ep.arrays.state.shape == (31, 128) and ep.frames.std() > 0


def test_cli_collect_and_its_errors(tmp_path, capsys):
    out = tmp_path / "cp"
    code = cli_main(["collect", "--env", "CartPole-v1", "--steps", "25", "--frame-size", "16", "--seed", "3",
                     "--out", str(out), "--no-progress"])
    assert code == 0
    line = capsys.readouterr().out
    assert "frames/s" in line and str(out) in line and "episodes" in line
    store = EpisodeStore.open(out)
    assert store.frame_size == 16 and store.meta["collect"]["seed"] == 3
    code = cli_main(["collect", "--env", "CartPol-v1", "--steps", "5", "--out", str(tmp_path / "bad"),
                     "--no-progress"])
    assert code == 2
    assert "unknown environment id 'CartPol-v1'" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="unknown policy 'greedy'"):
        collect(CollectConfig(policy="greedy", out=str(tmp_path / "g")), progress=False)
