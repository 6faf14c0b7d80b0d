"""Lockstep collection (rl/collect.py) with the MPC planner over several real envs: whole episodes in index
order with the seeds the loop assigns, the step budget respected, and the same episodes on a rerun (what
makes a resumed `vidworld dream` with `dream.acting: planner` re-collect exactly what was lost)."""

from __future__ import annotations

import numpy as np
import torch

from tests.models.tiny import FRAME, tiny_world_model
from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env
from vidworld.planning.cem import CEMConfig, CEMPlanner
from vidworld.rl.collect import collect_lockstep
from vidworld.rl.policies import LockstepPlannerPolicy


def _collect(model, envs, first_index: int):
    planner = CEMPlanner(model, CEMConfig(horizon=2, population=4, elites=2, iterations=1))
    policy = LockstepPlannerPolicy(model, planner, "fp32", torch.Generator().manual_seed(first_index))
    return collect_lockstep(envs, policy, 40, first_index, lambda i: 1000 + i)


def test_lockstep_planner_collection_is_whole_seeded_and_repeatable():
    model = tiny_world_model()
    cfg = PixelEnvConfig(id="CartPole-v1", frame_size=FRAME, max_episode_steps=15)
    envs = [make_pixel_env(cfg) for _ in range(3)]
    try:
        episodes = _collect(model, envs, 7)
        again = _collect(model, envs, 7)
        reference = make_pixel_env(cfg)
        for j, ep in enumerate(episodes):  # episode j starts where env seed 1000 + 7 + j starts
            first, _ = reference.reset(seed=1007 + j)
            assert np.array_equal(ep.frames[0], first)
            assert len(ep.frames) == len(ep.actions) + 1 and (ep.terminated[-1] or ep.truncated[-1])
        reference.close()
    finally:
        for e in envs:
            e.close()
    total = sum(len(e.actions) for e in episodes)
    assert total >= 40 and total - max(len(e.actions) for e in episodes) * 3 < 40  # no episode started past the budget
    assert len(again) == len(episodes)
    for a, b in zip(episodes, again):
        assert np.array_equal(a.actions, b.actions) and np.array_equal(a.frames, b.frames)
