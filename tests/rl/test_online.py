"""The online loop end to end on the tiny config, and a kill + --resume equal to an uninterrupted run."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch

from vidworld.experiment import load_experiment
from vidworld.rl import online
from tests.rl.kill import comparable_outputs, run_until_killed


def _cfg(run, *extra):
    return load_experiment("configs/tiny/dream.yaml", [f"run_dir={run}", *extra])


def _comparable(run):
    return (*comparable_outputs(run), torch.load(run / "dream_state" / "agent.pt", weights_only=False)["nets"])


def test_dream_runs_end_to_end_and_resumes_exactly_after_a_kill(tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    summary = online.run_dream(_cfg(whole), progress=False)
    assert summary["real_steps"] >= 300 and summary["iterations"] == 3
    assert [e["real_steps"] for e in summary["evaluations"]][-1] == summary["real_steps"]
    assert all(len(e["returns"]) == 2 for e in summary["evaluations"])
    assert (whole / "learning_curve.png").stat().st_size > 1000 and (whole / "model" / "world_model.json").is_file()

    # kill in iteration 3, right after its first new episode reached the store (never checkpointed)
    killed = tmp_path / "killed"
    state_file = killed / "dream_state" / "state.json"
    run_until_killed(_cfg(killed), monkeypatch)
    on_disk = sorted(p.stem for p in (killed / "replay" / "episodes").glob("*.npz"))
    before = json.loads(state_file.read_text())
    assert before["iteration"] == 2 and len(on_disk) == len(before["episodes"]) + 1  # one uncheckpointed episode
    with pytest.raises(ValueError, match="already holds a run"):
        online.run_dream(_cfg(killed), progress=False)
    online.run_dream(_cfg(killed), resume=True, progress=False)

    log_a, evals_a, steps_a, agent_a = _comparable(whole)
    log_b, evals_b, steps_b, agent_b = _comparable(killed)
    assert log_a == log_b and evals_a == evals_b and steps_a == steps_b
    assert agent_a.keys() == agent_b.keys() and all(torch.equal(agent_a[k], agent_b[k]) for k in agent_a)
    # the store holds exactly the replay's episodes: nothing orphaned or duplicated
    names = json.loads((killed / "dream_state" / "state.json").read_text())["episodes"]
    files = sorted(p.stem for p in (killed / "replay" / "episodes").glob("*.npz"))
    assert files == sorted(names) and len(set(names)) == len(names)


def test_diffusion_start_states_come_from_cached_latents_of_the_same_windows(tmp_path):
    """The diffusion learner's start states are the windows Replay.start_contexts draws with the same generator,
    encoded once when the model was updated (no frame is encoded per agent update)."""
    from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env
    from vidworld.protocol import ActionSpec
    from vidworld.rl.collect import collect
    from vidworld.rl.evaluate import RandomPolicy
    from vidworld.rl.replay import Replay
    from vidworld.world_models.diffusion.online import DiffusionOnline

    cfg = _cfg(tmp_path / "run")
    env_cfg = PixelEnvConfig(**{**cfg.collect.env.__dict__, "max_episode_steps": 50})
    env = make_pixel_env(env_cfg)
    replay = Replay.open(tmp_path / "replay", env_cfg.id, env_cfg.frame_size, 15.0, env.action_space, keep=None)
    for ep in collect(env, RandomPolicy(), 60, 0, partial(online.episode_seed, cfg)):
        replay.append(ep)
    learner = DiffusionOnline(cfg, tmp_path / "wm", ActionSpec(kind="discrete", n=2), {})
    with pytest.raises(ValueError, match="call update"):
        learner.start_states(None)
    model = learner.update(replay.episodes(), target_steps=1)
    fast = learner.start_states(model)(16, torch.Generator().manual_seed(3))
    frames, actions = replay.start_contexts(16, model.context_length, torch.Generator().manual_seed(3))
    slow = model.init(frames, actions)
    assert torch.equal(fast.actions, slow.actions)
    torch.testing.assert_close(model.features(fast), model.features(slow), atol=1e-5, rtol=1e-5)


def test_the_learning_curve_names_the_policy_that_was_evaluated(tmp_path):
    assert online.evaluated_policy(_cfg(tmp_path)) == "greedy actor"
    assert online.evaluated_policy(_cfg(tmp_path, "dream.acting=planner", "plan.planner=mcts")) == "MPC planner (mcts)"
    assert online.evaluated_policy(load_experiment("configs/tiny/muzero.yaml", [f"run_dir={tmp_path}"])
                                   ) == "MuZero search, greedy"
