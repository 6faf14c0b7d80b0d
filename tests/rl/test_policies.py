"""The actor's acting policy reads features only, so it drops the diffusion model's pixel anchor (a VAE decode per
real frame) without changing a single action."""

from __future__ import annotations

import numpy as np
import torch

from tests.models.tiny import FRAME, tiny_world_model
from vidworld.agents.actor_critic import ActorCritic, ActorCriticConfig
from vidworld.rl.policies import ActorPolicy
from vidworld.world_models.counting import CountingModel


def test_actor_policy_skips_the_pixel_anchor_and_acts_the_same():
    model = tiny_world_model()
    torch.manual_seed(0)
    agent = ActorCritic(ActorCriticConfig(hidden=16, layers=1, bins=31), model.feature_dim, model.action_spec)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (12, FRAME, FRAME, 3), dtype=np.uint8)

    def actions(policy):
        policy.reset(frames[0], seed=3)
        return [policy.act(f) for f in frames[1:]], policy.tracker.state

    fast, state = actions(ActorPolicy(CountingModel(model), agent, greedy=False))
    assert state.pixel_correction is None  # no decode happened while acting
    assert model.init(torch.from_numpy(frames[:3]).permute(0, 3, 1, 2)[None], torch.zeros(1, 2, dtype=torch.long)
                      ).pixel_correction is not None  # the model itself still anchors (decode_relative)
    # the reference: the same actor tracking the real frames with anchored states
    ref = ActorPolicy(model, agent, greedy=False)
    ref.tracker.model = model
    slow, ref_state = actions(ref)
    assert ref_state.pixel_correction is not None
    assert fast == slow and torch.equal(model.features(state), model.features(ref_state))


def _planner(model):
    from vidworld.planning.cem import CEMConfig, CEMPlanner

    return CEMPlanner(model, CEMConfig(horizon=3, population=6, elites=2, iterations=2, uncertainty_samples=2))


def test_lockstep_planner_plays_one_episode_exactly_like_the_sequential_planner():
    """One episode in lockstep = PlannerPolicy (MPCAgent): the same contexts, padding, warm start and noise."""
    from vidworld.rl.policies import LockstepPlannerPolicy, PlannerPolicy

    model = tiny_world_model()
    frames = np.random.default_rng(1).integers(0, 256, (10, FRAME, FRAME, 3), dtype=np.uint8)
    seq = PlannerPolicy(model, _planner(model))
    seq.reset(frames[0], seed=5)
    expected = [seq.act(f) for f in frames]  # the first call sees the reset frame again, as the harness does
    lock = LockstepPlannerPolicy(model, _planner(model))
    lock.start(0, frames[0], seed=5)
    got = [lock.act_many({0: f})[0] for f in frames]
    assert got == expected and len(set(expected)) > 1  # not a constant policy


def test_lockstep_planner_plans_each_episode_from_its_own_frames():
    """Two episodes in lockstep: row e of the batched root state is model.init of episode e's own padded
    context, and an episode that ended is forgotten."""
    from vidworld.rl.policies import LockstepPlannerPolicy

    model = tiny_world_model()
    planner, roots = _planner(model), []
    batch = planner.plan_batch
    planner.plan_batch = lambda state, last, gen: (roots.append(state), batch(state, last, gen))[1]
    rng = np.random.default_rng(2)
    a, b = (rng.integers(0, 256, (4, FRAME, FRAME, 3), dtype=np.uint8) for _ in range(2))
    lock = LockstepPlannerPolicy(model, planner, precision="fp32")
    lock.start(0, a[0], seed=1)
    lock.start(1, b[0], seed=2)
    acts = [lock.act_many({0: a[t], 1: b[t]}) for t in range(3)]
    K = model.context_length
    for e, frames in enumerate((a, b)):
        padded = np.concatenate([np.repeat(frames[:1], K, 0), frames[1:3]])[-K:]  # frames 0, 1, 2 after padding
        taken = [0] * K + [acts[0][e], acts[1][e]]
        own = model.init(torch.from_numpy(padded).permute(0, 3, 1, 2)[None],
                         torch.tensor(taken[-(K - 1):] if K > 1 else [], dtype=torch.long)[None])
        torch.testing.assert_close(model.features(roots[-1])[e:e + 1], model.features(own))
    lock.act_many({1: b[3]})  # episode 0 ended
    assert set(lock.frames) == {1} and model.features(roots[-1]).shape[0] == 1
