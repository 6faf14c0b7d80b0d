"""The MuZero update on real batches from the prioritised replay (state and pixel observations): it learns
(the loss on a fixed batch falls), halves the gradient into the dynamics, and returns |V - z| priorities."""

from __future__ import annotations

import pytest
import torch

from vidworld.protocol import ActionSpec
from vidworld.rl.muzero_config import MuZeroLearnConfig
from vidworld.rl.muzero_learner import muzero_update, scale_gradient
from vidworld.rl.muzero_replay import Game, MuZeroReplay
from vidworld.world_models.muzero.config import MuZeroNetConfig
from vidworld.world_models.muzero.model import build_model


def test_scale_gradient_is_identity_forward_and_scales_backward():
    x = torch.tensor([2.0, -1.0], requires_grad=True)
    y = scale_gradient(x, 0.5)
    assert torch.equal(y, x.detach())
    y.sum().backward()
    assert x.grad.tolist() == [0.5, 0.5]


@pytest.mark.parametrize("observation", ["state", "pixels"])
def test_update_learns_a_fixed_batch_and_sets_priorities(observation):
    torch.manual_seed(0)
    shape = (4,) if observation == "state" else (3, 16, 16)
    model = build_model(MuZeroNetConfig(observation=observation, latent_dim=16, hidden=32, layers=2, channels=(4, 8)),
                        shape, 2, ActionSpec(n=2))
    g = torch.Generator().manual_seed(1)
    replay = MuZeroReplay(num_actions=2, context_length=2, alpha=0.6, beta=0.4)
    for n in (12, 7):
        obs = torch.randn(n + 1, *shape, generator=g) if observation == "state" else torch.randint(
            0, 256, (n + 1, *shape), generator=g, dtype=torch.uint8)
        replay.add(Game(obs, torch.randint(0, 2, (n,), generator=g), torch.ones(n), n == 7,
                        torch.softmax(torch.randn(n, 2, generator=g), -1), torch.zeros(n), torch.ones(n)))
    batch = replay.sample(16, unroll=3, td_steps=4, discount=0.97, generator=g,
                          value_fn=lambda o, a: torch.full((o.shape[0],), 5.0))
    assert batch.obs.shape == (16, 2, *shape) and batch.obs.dtype == (torch.float32 if observation == "state"
                                                                       else torch.uint8)
    opt = torch.optim.Adam(model.nets.parameters(), lr=3e-3)
    cfg = MuZeroLearnConfig(batch_size=16, unroll_steps=3, td_steps=4)
    first, priorities = muzero_update(model.nets, opt, batch, cfg)
    for _ in range(20):
        last, _ = muzero_update(model.nets, opt, batch, cfg)
    assert last["loss"] < 0.7 * first["loss"]
    # the first priorities: the untrained value (0) against the targets
    torch.testing.assert_close(priorities, batch.target_values[:, 0].abs() + 1e-6, rtol=1e-4, atol=1e-4)
    replay.update_priorities(batch.index, priorities)
    assert replay.max_priority == pytest.approx(float(priorities.max()))
