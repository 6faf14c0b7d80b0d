"""The MuZero update on real batches from the prioritised replay (state and pixel observations): it learns
(the loss on a fixed batch falls), halves the gradient into the dynamics, and returns |V - z| priorities;
EfficientZero's consistency term by hand (masked mean -cos, no gradient through the target branch) and on
the pixel path."""

from __future__ import annotations

import copy

import pytest
import torch

from vidworld.protocol import ActionSpec
from vidworld.rl.muzero_config import MuZeroLearnConfig
from vidworld.rl.muzero_learner import muzero_update, negative_cosine, scale_gradient
from vidworld.rl.muzero_replay import Game, MuZeroReplay
from vidworld.world_models.muzero.config import MuZeroNetConfig
from vidworld.world_models.muzero.model import build_model


def test_scale_gradient_is_identity_forward_and_scales_backward():
    x = torch.tensor([2.0, -1.0], requires_grad=True)
    y = scale_gradient(x, 0.5)
    assert torch.equal(y, x.detach())
    y.sum().backward()
    assert x.grad.tolist() == [0.5, 0.5]


def _replay(observation: str, shape: tuple[int, ...]) -> MuZeroReplay:
    """Two random games (12 steps truncated, 7 terminated), K = 2, all priorities 1."""
    g = torch.Generator().manual_seed(1)
    replay = MuZeroReplay(num_actions=2, context_length=2, alpha=0.6, beta=0.4)
    for n in (12, 7):
        obs = torch.randn(n + 1, *shape, generator=g) if observation == "state" else torch.randint(
            0, 256, (n + 1, *shape), generator=g, dtype=torch.uint8)
        replay.add(Game(obs, torch.randint(0, 2, (n,), generator=g), torch.ones(n), n == 7,
                        torch.softmax(torch.randn(n, 2, generator=g), -1), torch.zeros(n), torch.ones(n)))
    return replay


@pytest.mark.parametrize("observation", ["state", "pixels"])
def test_update_learns_a_fixed_batch_and_sets_priorities(observation):
    torch.manual_seed(0)
    shape = (4,) if observation == "state" else (3, 16, 16)
    model = build_model(MuZeroNetConfig(observation=observation, latent_dim=16, hidden=32, layers=2, channels=(4, 8)),
                        shape, 2, ActionSpec(n=2))
    replay = _replay(observation, shape)
    batch = replay.sample(16, unroll=3, td_steps=4, discount=0.97, generator=torch.Generator().manual_seed(2),
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


def test_negative_cosine_by_hand_and_no_gradient_into_the_target():
    # online [1, 0] vs target [1, 1]: -cos = -1/sqrt(2); d(-cos)/d online = -(t/|t| - cos * o/|o|) / |o|
    # = -([.707, .707] - .707 [1, 0]) = [0, -1/sqrt(2)]; the target (stop-gradient) gets none
    online = torch.tensor([[1.0, 0.0], [2.0, 0.0]], requires_grad=True)
    target = torch.tensor([[1.0, 1.0], [-3.0, 0.0]], requires_grad=True)
    loss = negative_cosine(online, target)
    torch.testing.assert_close(loss, torch.tensor([-(0.5 ** 0.5), 1.0]))  # scale-free: [2, 0] vs [-3, 0]
    loss[0].backward()
    torch.testing.assert_close(online.grad, torch.tensor([[0.0, -(0.5 ** 0.5)], [0.0, 0.0]]))
    assert target.grad is None


def test_consistency_term_is_masked_mean_negative_cosine_with_a_stop_gradient_target(monkeypatch):
    torch.manual_seed(0)
    model = build_model(MuZeroNetConfig(observation="state", latent_dim=8, hidden=16, layers=2), (4,), 2,
                        ActionSpec(n=2), consistency=True)
    nets = model.nets
    batch = _replay("state", (4,)).sample(16, unroll=3, td_steps=4, discount=0.97,
                                          generator=torch.Generator().manual_seed(3),
                                          value_fn=lambda o, a: torch.zeros(o.shape[0]), next_windows=True)
    assert not batch.next_mask.all() and batch.next_mask.any()  # some unrolls run past a game's end
    # the expected term, from a copy of the networks before the step (BatchNorm in training mode, as there)
    ref = copy.deepcopy(nets).train()
    with torch.no_grad():
        latent = ref.represent(batch.obs, batch.context_actions)
        want = torch.zeros(16)
        for k in range(1, 4):
            latent, _ = ref.dynamics(latent, batch.actions[:, k - 1])
            nxt = ref.represent(batch.next_obs[:, k - 1], batch.next_context_actions[:, k - 1])
            target = ref.project(nxt, online=False)
            cos = torch.nn.functional.cosine_similarity(ref.project(latent, online=True), target, dim=-1)
            want += -cos * batch.next_mask[:, k - 1] / 3
    # record every projection: the target branch's carry no graph, the online branch's do
    calls, project = [], nets.project
    monkeypatch.setattr(nets, "project",
                        lambda s, online: calls.append((online, out := project(s, online))) or out)
    opt = torch.optim.Adam(nets.parameters(), lr=3e-3)
    cfg = MuZeroLearnConfig(batch_size=16, unroll_steps=3, consistency_weight=2.0)
    logs, _ = muzero_update(nets, opt, batch, cfg)
    assert logs["consistency_loss"] == pytest.approx(float(want.mean()), abs=1e-5)
    assert [online for online, _ in calls] == [False, True] * 3
    assert all(out.requires_grad == online for online, out in calls)
    assert all(p.grad is not None for p in nets.predictor.parameters())  # the online branch learns
    plain = _replay("state", (4,)).sample(4, 3, 4, 0.97, torch.Generator().manual_seed(0),
                                          lambda o, a: torch.zeros(o.shape[0]))  # without next_windows
    with pytest.raises(ValueError, match="next_windows"):
        muzero_update(nets, opt, plain, cfg)


def test_pixel_representation_learns_with_the_consistency_loss():
    """The pixel path at unit level (uint8 next windows through the conv target branch): on a fixed batch
    the consistency term falls with the whole loss, and the conv encoder trains."""
    torch.manual_seed(0)
    shape = (3, 16, 16)
    net = MuZeroNetConfig(observation="pixels", latent_dim=16, hidden=32, layers=2, channels=(4, 8))
    model = build_model(net, shape, 2, ActionSpec(n=2), consistency=True)
    batch = _replay("pixels", shape).sample(16, unroll=3, td_steps=4, discount=0.97,
                                            generator=torch.Generator().manual_seed(1),
                                            value_fn=lambda o, a: torch.full((o.shape[0],), 5.0),
                                            next_windows=True)
    assert batch.next_obs.shape == (16, 3, 2, *shape) and batch.next_obs.dtype == torch.uint8
    opt = torch.optim.Adam(model.nets.parameters(), lr=3e-3)
    cfg = MuZeroLearnConfig(batch_size=16, unroll_steps=3, td_steps=4, consistency_weight=2.0)
    conv = model.nets.conv[0].weight.detach().clone()
    first, _ = muzero_update(model.nets, opt, batch, cfg)
    for _ in range(20):
        last, _ = muzero_update(model.nets, opt, batch, cfg)
    assert not torch.equal(conv, model.nets.conv[0].weight)
    assert last["consistency_loss"] < first["consistency_loss"] - 0.2 and last["loss"] < first["loss"]
