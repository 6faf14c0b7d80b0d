"""MuZero's pieces against hand-computed values: the h transform and its categorical support, n-step value
targets with terminations and truncations, the unrolled batch targets and the consistency loss's next
windows, prioritised sampling and its resume, and the model folder round trip in both observation modes (and
with the consistency heads, and from a folder older than them)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidworld.protocol import ActionSpec, ValuePredictor, PixelDecoder
from vidworld.rl.muzero_replay import Game, MuZeroReplay, nstep_value_targets, window
from vidworld.world_models import load_world_model
from vidworld.world_models.muzero.config import MuZeroNetConfig
from vidworld.world_models.muzero.model import build_model
from vidworld.world_models.muzero.support import h, h_inv, scalar_to_support, support_to_scalar


def test_h_matches_hand_values_and_inverts():
    # h(3) = sqrt(4) - 1 + 0.003 = 1.003; h(-8) = -(3 - 1) - 0.008 = -2.008; h(0) = 0
    torch.testing.assert_close(h(torch.tensor([3.0, -8.0, 0.0])), torch.tensor([1.003, -2.008, 0.0]))
    x = torch.tensor([-500.0, -3.7, -1e-3, 0.0, 0.25, 1.0, 42.0, 1234.5], dtype=torch.float64)
    torch.testing.assert_close(h_inv(h(x)), x)


def test_two_hot_support_by_hand_and_round_trip():
    # h(3) = 1.003 -> bins -2..2: mass 0.997 on bin 1, 0.003 on bin 2
    p = scalar_to_support(torch.tensor([3.0]), 2)
    torch.testing.assert_close(p, torch.tensor([[0.0, 0.0, 0.0, 0.997, 0.003]]))
    x = torch.tensor([-20.0, -1.5, 0.0, 0.7, 3.0, 60.0])
    logits = scalar_to_support(x, 10).clamp_min(1e-12).log()  # softmax(log p) = p
    torch.testing.assert_close(support_to_scalar(logits, 10), x, rtol=1e-4, atol=1e-4)
    # beyond the support: clipped to h^-1(S)
    assert float(support_to_scalar(scalar_to_support(torch.tensor([1e6]), 2).log(), 2)) == pytest.approx(
        float(h_inv(torch.tensor(2.0))), rel=1e-4)
    with pytest.raises(ValueError, match="5 bins"):
        support_to_scalar(torch.zeros(1, 4), 2)


def test_nstep_targets_with_termination_and_truncation_by_hand():
    rewards, values = np.array([1.0, 1.0, 1.0]), np.array([10.0, 20.0, 30.0, 40.0])
    # gamma 0.5, n = 2. terminated: z0 = 1 + .5 + .25 V2; z1 = 1 + .5 (o3 terminal); z2 = 1; z3 = 0
    np.testing.assert_allclose(nstep_value_targets(rewards, True, values, 2, 0.5), [9.0, 1.5, 1.0, 0.0])
    # truncated after 3 steps: bootstrap from o3 = 40 where the window reaches the end
    np.testing.assert_allclose(nstep_value_targets(rewards, False, values, 2, 0.5), [9.0, 11.5, 21.0, 40.0])


def _game(terminated: bool, priorities=(0.0, 0.0, 1.0)) -> Game:
    """3 steps; state o_i = [i+1, 0] so a value_fn reading it gives V(o_b) = 10 (b + 1)."""
    obs = torch.tensor([[1.0, 0], [2.0, 0], [3.0, 0], [4.0, 0]])
    return Game(obs, torch.tensor([1, 0, 1]), torch.tensor([1.0, 1.0, 1.0]), terminated,
                torch.tensor([[0.2, 0.8], [0.6, 0.4], [0.9, 0.1]]), torch.zeros(3), torch.tensor(priorities))


def value_fn(obs, actions):
    return 10 * obs[:, -1, 0]


@pytest.mark.parametrize("terminated", [True, False])
def test_unrolled_batch_targets_by_hand(terminated):
    replay = MuZeroReplay(num_actions=2, context_length=2, alpha=1.0, beta=1.0)
    replay.add(_game(terminated))  # only position 2 has priority: every sample is (game 0, t=2)
    b = replay.sample(4, unroll=2, td_steps=2, discount=0.5, generator=torch.Generator().manual_seed(0),
                      value_fn=value_fn)
    assert b.index.tolist() == [[0, 2]] * 4
    torch.testing.assert_close(b.obs[0], torch.tensor([[2.0, 0], [3.0, 0]]))  # window ending at t=2
    assert b.context_actions[0].tolist() == [0]  # the action between o1 and o2
    assert b.actions[0, 0] == 1  # the real action at t=2, then a random one past the end
    # k=0 (u=2): z = 1 (+ gamma V(o3) = .5 * 40 if truncated); k=1 (u=3 = N): 0 or V(o3); k=2 (u=4): 0 / masked
    want = [1.0, 0.0, 0.0] if terminated else [21.0, 40.0, 0.0]
    torch.testing.assert_close(b.target_values[0], torch.tensor(want))
    assert b.value_mask[0].tolist() == [True, True, terminated]
    torch.testing.assert_close(b.target_rewards[0], torch.tensor([1.0, 0.0]))
    assert b.policy_mask[0].tolist() == [True, False, False]
    torch.testing.assert_close(b.target_policies[0, 0], torch.tensor([0.9, 0.1]))
    torch.testing.assert_close(b.weights, torch.ones(4))


@pytest.mark.parametrize("t", [0, 2])
def test_next_windows_and_mask_by_hand(t):
    """EfficientZero's consistency targets: the K=2 windows ending at t+1..t+U, masked past o_N (N = 3)."""
    priorities = [0.0, 0.0, 0.0]
    priorities[t] = 1.0
    replay = MuZeroReplay(num_actions=2, context_length=2, alpha=1.0, beta=1.0)
    replay.add(_game(True, priorities=tuple(priorities)))  # o_i = [i+1, 0], actions a_0..a_2 = 1, 0, 1
    args = dict(unroll=2, td_steps=2, discount=0.5, value_fn=value_fn)
    b = replay.sample(3, generator=torch.Generator().manual_seed(0), next_windows=True, **args)
    assert b.next_obs.shape == (3, 2, 2, 2) and b.next_context_actions.shape == (3, 2, 1)
    if t == 0:  # windows ending at 1 (o0 o1, a0) and 2 (o1 o2, a1), both inside
        want_obs, want_act, want_mask = [[1.0, 2.0], [2.0, 3.0]], [[1], [0]], [True, True]
    else:  # t = 2: the window ending at 3 = N (o2 o3, a2) exists; at 4 it is past the end (repeats N, masked)
        want_obs, want_act, want_mask = [[3.0, 4.0], [3.0, 4.0]], [[1], [1]], [True, False]
    assert b.next_obs[:, :, :, 0].tolist() == [want_obs] * 3 and not b.next_obs[..., 1].any()
    assert b.next_context_actions.tolist() == [want_act] * 3 and b.next_mask.tolist() == [want_mask] * 3
    # off: nothing gathered; either way the same draws (the generator ends in the same state, same batch)
    g_on, g_off = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    on = replay.sample(3, generator=g_on, next_windows=True, **args)
    off = replay.sample(3, generator=g_off, **args)
    assert off.next_obs is None and off.next_context_actions is None and off.next_mask is None
    assert torch.equal(g_on.get_state(), g_off.get_state())
    for name in ("obs", "context_actions", "actions", "target_values", "target_policies", "weights", "index"):
        assert torch.equal(getattr(on, name), getattr(off, name)), name


def test_window_pads_an_episode_start_like_the_acting_policies():
    obs, acts = torch.arange(4.0)[:, None], torch.tensor([1, 1, 0])
    o, a = window(obs, acts, 0, 3)
    assert o[:, 0].tolist() == [0, 0, 0] and a.tolist() == [0, 0]
    o, a = window(obs, acts, 3, 3)
    assert o[:, 0].tolist() == [1, 2, 3] and a.tolist() == [1, 0]


def test_prioritised_sampling_weights_and_priority_state():
    replay = MuZeroReplay(num_actions=2, context_length=1, alpha=1.0, beta=1.0)
    replay.add(_game(True, priorities=(0.0, 1.0, 3.0)))
    idx, w = replay.sample_positions(4000, torch.Generator().manual_seed(0))
    frac = (idx[:, 1] == 2).float().mean()
    assert 0.72 < float(frac) < 0.78 and not (idx[:, 1] == 0).any()
    # w = (N P)^-beta / max: P = 1/4 -> 4/3, P = 3/4 -> 4/9; normalised: 1 and 1/3
    torch.testing.assert_close(w[idx[:, 1] == 1][0], torch.tensor(1.0))
    torch.testing.assert_close(w[idx[:, 1] == 2][0], torch.tensor(1 / 3))
    replay.update_priorities(torch.tensor([[0, 0], [0, 2]]), torch.tensor([5.0, 0.5]))
    state = replay.state_dict()
    assert state["priorities"][0].tolist() == [5.0, 1.0, 0.5] and state["max_priority"] == 5.0
    # the same draws from a replay rebuilt with the saved priorities
    again = MuZeroReplay(num_actions=2, context_length=1, alpha=1.0, beta=1.0)
    again.add(_game(True, priorities=tuple(state["priorities"][0].tolist())))
    a, _ = replay.sample_positions(16, torch.Generator().manual_seed(1))
    b, _ = again.sample_positions(16, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_consistency_heads_round_trip_and_old_folders_still_load(tmp_path):
    """With consistency the networks carry projection heads (recorded as projection_dim, saved, loaded); a
    folder written before they existed (no projection_dim in its config) loads without them."""
    torch.manual_seed(0)
    net = MuZeroNetConfig(observation="state", latent_dim=8, hidden=16, layers=1)
    plain = build_model(net, (4,), 1, ActionSpec(n=2))
    torch.manual_seed(0)
    heads = build_model(net, (4,), 1, ActionSpec(n=2), consistency=True)
    # the heads come last: every other initial weight is the same as without them
    for k, v in plain.nets.state_dict().items():
        assert torch.equal(v, heads.nets.state_dict()[k]), k
    assert heads.nets.project(torch.rand(3, 8), online=True).shape == (3, 16)
    with pytest.raises(ValueError, match="consistency_weight"):
        plain.nets.project(torch.rand(3, 8), online=False)
    heads.save_pretrained(tmp_path / "heads")
    loaded = load_world_model(tmp_path / "heads")
    assert loaded.nets.projection_dim == 16
    for k, v in heads.nets.state_dict().items():
        assert torch.equal(v, loaded.nets.state_dict()[k]), k
    plain.save_pretrained(tmp_path / "old")
    info = json.loads((tmp_path / "old" / "world_model.json").read_text())
    del info["networks"]["projection_dim"]
    (tmp_path / "old" / "world_model.json").write_text(json.dumps(info))
    assert load_world_model(tmp_path / "old").nets.projection_dim == 0


@pytest.mark.parametrize("observation", ["state", "pixels"])
def test_model_round_trip_and_capabilities(tmp_path, observation):
    torch.manual_seed(0)
    net = MuZeroNetConfig(observation=observation, latent_dim=8, hidden=16, layers=2, channels=(4, 8))
    shape = (4,) if observation == "state" else (3, 16, 16)
    model = build_model(net, shape, 2, ActionSpec(n=2), {"env_id": "CartPole-v1"})
    assert isinstance(model, ValuePredictor) and not isinstance(model, PixelDecoder)
    obs = torch.rand(3, 2, *shape) if observation == "state" else torch.randint(0, 256, (3, 2, *shape),
                                                                                  dtype=torch.uint8)
    state = model.init(obs, torch.zeros(3, 1, dtype=torch.long))
    assert float(state.latent.min()) >= 0 and float(state.latent.max()) <= 1  # min-max scaled
    model.save_pretrained(tmp_path / "m")
    loaded = load_world_model(tmp_path / "m")
    assert loaded.meta["observation"] == observation and loaded.frame_size == (0 if observation == "state" else 16)
    torch.testing.assert_close(loaded.value(loaded.init(obs, torch.zeros(3, 1, dtype=torch.long))),
                               model.value(state))
    bad = obs.to(torch.uint8) if observation == "state" else obs.float()
    with pytest.raises(ValueError, match="context observations must be"):
        model.init(bad, torch.zeros(3, 1, dtype=torch.long))


def test_pixel_encoder_norm_batch_by_default_and_old_group_norm_folders_load(tmp_path):
    """New pixel networks normalise their convs with BatchNorm (running statistics saved and loaded); a folder
    written before `encoder_norm` existed (GroupNorm, no key in its config) loads as it was saved."""
    from torch import nn

    from vidworld.config import FieldError

    net = MuZeroNetConfig(observation="pixels", latent_dim=8, hidden=16, layers=1, channels=(4, 8))
    model = build_model(net, (3, 16, 16), 2, ActionSpec(n=2))
    norms = [m for m in model.nets.conv if not isinstance(m, (nn.Conv2d, nn.ELU))]
    assert len(norms) == 2 and all(isinstance(m, nn.BatchNorm2d) for m in norms)
    assert all(float(m.running_mean.abs().max()) == 0 for m in norms)  # building probed sizes in eval mode
    obs = torch.randint(0, 256, (6, 2, 3, 16, 16), dtype=torch.uint8)
    acts = torch.zeros(6, 1, dtype=torch.long)
    model.nets.train()
    model.nets.represent(obs, acts)  # a training-mode pass moves the running statistics
    model.eval()
    model.save_pretrained(tmp_path / "bn")
    loaded = load_world_model(tmp_path / "bn")
    torch.testing.assert_close(loaded.value(loaded.init(obs, acts)), model.value(model.init(obs, acts)))

    old = build_model(MuZeroNetConfig(**{**net.__dict__, "encoder_norm": "group"}), (3, 16, 16), 2, ActionSpec(n=2))
    old.save_pretrained(tmp_path / "old")
    info = json.loads((tmp_path / "old" / "world_model.json").read_text())
    del info["networks"]["encoder_norm"]
    (tmp_path / "old" / "world_model.json").write_text(json.dumps(info))
    back = load_world_model(tmp_path / "old")
    assert isinstance(back.nets.conv[1], nn.GroupNorm)
    torch.testing.assert_close(back.value(back.init(obs, acts)), old.value(old.init(obs, acts)))
    with pytest.raises(FieldError, match="encoder_norm"):
        MuZeroNetConfig(observation="pixels", encoder_norm="layer")
