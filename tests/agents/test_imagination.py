"""imagine(): shapes, the time alignment of rewards/continues, determinism, and what the actor sees."""

from __future__ import annotations

import torch

from tests.planning.toy_models import CounterState, Leaky, ScriptedChain
from vidworld.agents import ActorCritic, ActorCriticConfig, imagine


def _counter(B: int) -> CounterState:
    return CounterState(torch.zeros(B, dtype=torch.long), torch.zeros(B))


def test_alignment_shapes_and_log_probs():
    model, H, B = Leaky(p=0.25), 4, 3  # reward 1 and termination prob 0.25 on every transition
    ac = ActorCritic(ActorCriticConfig(hidden=16), model.feature_dim, model.action_spec)
    with torch.no_grad():
        traj = imagine(model, _counter(B), ac.actor, H, torch.Generator().manual_seed(0))
    assert traj.horizon == H
    assert traj.features.shape == (H + 1, B, model.feature_dim) and traj.actions.shape == (H + 1, B)
    for f in (traj.rewards, traj.continues, traj.log_probs, traj.entropies):
        assert f.shape == (H + 1, B)
    # index t = state s_t: the start has no incoming reward and is live; every later state got reward 1
    assert traj.rewards[0].tolist() == [0.0] * B and bool((traj.rewards[1:] == 1).all())
    assert traj.continues[0].tolist() == [1.0] * B and bool((traj.continues[1:] == 0.75).all())
    # features[t] is the state after t steps (Leaky's state counts them)
    assert traj.features[:, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    torch.testing.assert_close(traj.alive()[:, 0], 0.75 ** torch.arange(H + 1.0))
    torch.testing.assert_close(traj.imagined_return(), torch.full((B,), 0.75 + 0.75**2 + 0.75**3 + 0.75**4))
    policy = ac.actor(traj.features)
    torch.testing.assert_close(traj.log_probs, policy.log_prob(traj.actions))
    torch.testing.assert_close(traj.entropies, policy.entropy())


def test_seeded_and_executes_the_sampled_actions():
    model = ScriptedChain(target=[0, 1, 2, 1], n=3)  # reward 1 iff action == target[t]
    ac = ActorCritic(ActorCriticConfig(hidden=16), model.feature_dim, model.action_spec)
    with torch.no_grad():
        a = imagine(model, _counter(8), ac.actor, 5, torch.Generator().manual_seed(3))
        b = imagine(model, _counter(8), ac.actor, 5, torch.Generator().manual_seed(3))
        c = imagine(model, _counter(8), ac.actor, 5, torch.Generator().manual_seed(4))
    assert torch.equal(a.actions, b.actions) and torch.equal(a.rewards, b.rewards)
    assert not torch.equal(a.actions, c.actions)
    target = model.target[torch.arange(5) % 4][:, None]
    # reward of the transition into s_{t+1} judges the action sampled at s_t
    assert torch.equal(a.rewards[1:], (a.actions[:-1] == target).float())
