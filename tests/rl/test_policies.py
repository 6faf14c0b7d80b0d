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
