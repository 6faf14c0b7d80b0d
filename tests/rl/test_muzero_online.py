"""MuZero through the online loop on the tiny config (state vector; self-play, reanalyse, evaluation) end to
end, with and without EfficientZero's consistency loss, a kill + --resume equal to an uninterrupted run
(networks, target, optimiser, priorities), the config checks, and the greedy policy fed the state vector by
the shared harness."""

from __future__ import annotations

import pytest
import torch

from vidworld.envs.pixels import PixelEnvConfig
from vidworld.experiment import load_experiment
from vidworld.rl import online
from vidworld.rl.evaluate import evaluate_policy
from tests.rl.kill import comparable_outputs, run_until_killed
from vidworld.world_models import load_world_model


def _cfg(run, *extra):
    return load_experiment("configs/tiny/muzero.yaml", [f"run_dir={run}", *extra])


def _comparable(run):
    return (*comparable_outputs(run), torch.load(run / "dream_state" / "agent.pt", weights_only=False))


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("consistency", [False, True])
def test_muzero_dream_runs_end_to_end_and_resumes_exactly_after_a_kill(tmp_path, monkeypatch, consistency):
    extra = ["muzero.learn.consistency_weight=2.0"] if consistency else []
    whole = tmp_path / "whole"
    summary = online.run_dream(_cfg(whole, *extra), progress=False)
    assert summary["real_steps"] >= 300 and summary["iterations"] == 3
    assert [e["real_steps"] for e in summary["evaluations"]][-1] == summary["real_steps"]
    assert all(len(e["returns"]) == 2 for e in summary["evaluations"])
    assert (whole / "learning_curve.png").stat().st_size > 1000
    model = load_world_model(whole / "model")
    assert model.meta["observation"] == "state" and model.feature_dim == 8
    assert model.nets.projection_dim == (16 if consistency else 0)  # the heads (P = hidden) saved and loaded
    log, _, _, agent = _comparable(whole)
    assert agent["updates"] >= 9
    if consistency:  # -cos in [-1, 1]: the total may go below 0
        assert all(-1 <= r["consistency_loss"] <= 1 and r["consistency_loss"] != 0 for r in log)
    else:
        assert all(r["loss"] > 0 and "consistency_loss" not in r for r in log)
    assert not all(torch.equal(p, torch.ones_like(p)) for p in agent["replay"]["priorities"]), "priorities updated"

    killed = tmp_path / "killed"
    run_until_killed(_cfg(killed, *extra), monkeypatch)
    online.run_dream(_cfg(killed, *extra), resume=True, progress=False)
    log_a, evals_a, steps_a, agent_a = _comparable(whole)
    log_b, evals_b, steps_b, agent_b = _comparable(killed)
    assert log_a == log_b and evals_a == evals_b and steps_a == steps_b
    for key in ("nets", "target", "optimizer", "generator", "updates", "replay"):
        assert _equal(agent_a[key], agent_b[key]), key


def test_agent_and_kind_must_agree(tmp_path):
    with pytest.raises(ValueError, match="dream.agent"):
        online.run_dream(_cfg(tmp_path / "a", "dream.agent=actor_critic"), progress=False)
    with pytest.raises(ValueError, match="dream.agent"):
        load_experiment("configs/tiny/muzero.yaml", ["dream.agent=alphazero"])


@pytest.mark.parametrize("observation", ["state", "pixels"])
def test_greedy_policy_is_fed_its_observation_by_the_harness(observation):
    """The shared harness runs MuZero's batched policy in lockstep, feeding frames or info["state"]."""
    from vidworld.protocol import ActionSpec
    from vidworld.rl.muzero_config import MuZeroSearchConfig
    from vidworld.rl.policies import MuZeroPolicy
    from vidworld.world_models.muzero.config import MuZeroNetConfig
    from vidworld.world_models.muzero.model import build_model

    torch.manual_seed(0)
    net = MuZeroNetConfig(observation=observation, latent_dim=8, hidden=16, layers=1, channels=(4, 8))
    model = build_model(net, (4,) if observation == "state" else (3, 16, 16), 2, ActionSpec(n=2)).eval()
    with torch.no_grad():
        model.nets.policy_out.weight.normal_(0, 1.0)
    search = MuZeroSearchConfig(num_simulations=3)
    env = PixelEnvConfig(id="CartPole-v1", frame_size=16, max_episode_steps=30)
    a = evaluate_policy(MuZeroPolicy(model, search, greedy=True), env, episodes=3, seed=5)
    b = evaluate_policy(MuZeroPolicy(model, search, greedy=True), env, episodes=3, seed=5)
    assert a.returns == b.returns and a.seeds == (5, 6, 7) and all(1 <= n <= 30 for n in a.lengths)
