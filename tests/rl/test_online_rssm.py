"""The online loop on the RSSM (its online learner, the actor learning through the dynamics) end to end on the
tiny config, and a kill + --resume giving the same world model, agent, log and evaluations as an
uninterrupted run."""

from __future__ import annotations

import json

import torch

from vidworld.experiment import load_experiment
from vidworld.rl import online
from tests.rl.kill import comparable_outputs, run_until_killed
from vidworld.world_models import load_world_model
from vidworld.world_models.rssm.model import RSSMWorldModel


def _cfg(run, *extra):
    return load_experiment("configs/tiny/dream_rssm.yaml", [f"run_dir={run}", *extra])


def _comparable(run):
    agent = torch.load(run / "dream_state" / "agent.pt", weights_only=False)["nets"]
    return (*comparable_outputs(run), agent, load_world_model(run / "model").state_dict())


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_dream_on_rssm_learns_through_the_dynamics_and_resumes_exactly_after_a_kill(tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    summary = online.run_dream(_cfg(whole), progress=False)
    assert summary["real_steps"] >= 300 and summary["iterations"] == 3
    assert [e["real_steps"] for e in summary["evaluations"]][-1] == summary["real_steps"]
    assert isinstance(load_world_model(whole / "model"), RSSMWorldModel)
    # the world model trained 3 updates per iteration in total, resuming its own checkpoints
    stage_log = whole / "world_model" / "stage_rssm" / "log.jsonl"
    rows = [json.loads(x) for x in stage_log.read_text().splitlines()]
    assert rows[-1]["step"] == 9 and all(r["stage"] == "rssm" for r in rows)
    log = [json.loads(x) for x in (whole / "log.jsonl").read_text().splitlines()]
    assert all(r["actor_grad_norm"] > 0 for r in log)

    # kill in iteration 3, right after its first new episode reached the store (never checkpointed)
    killed = tmp_path / "killed"
    run_until_killed(_cfg(killed), monkeypatch)
    online.run_dream(_cfg(killed), resume=True, progress=False)

    log_a, evals_a, steps_a, agent_a, model_a = _comparable(whole)
    log_b, evals_b, steps_b, agent_b, model_b = _comparable(killed)
    assert log_a == log_b and evals_a == evals_b and steps_a == steps_b
    assert _equal(agent_a, agent_b) and _equal(model_a, model_b)

