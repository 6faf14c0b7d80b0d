"""The RSSM world model (kind "rssm"): its losses against hand-computed values, sequence batches at episode
boundaries, differentiable imagination, filtering (`observe` against `init`), size presets, and a two-step
training run that resumes exactly.
(Protocol behaviour — shapes, seeded determinism, branching, save/load, gymnasium — is in the conformance
suite, tests/world_models/test_conformance.py, which includes the RSSM.)"""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from vidworld.config import ConfigError
from vidworld.experiment import load_experiment
from vidworld.protocol import ActionSpec, ValuePredictor, value_function
from vidworld.train.episodes import Episodes
from vidworld.train.run import train_world_model
from vidworld.world_models import load_world_model
from vidworld.world_models.rssm.config import RSSMConfig
from vidworld.world_models.rssm.losses import (
    kl_balance,
    sample_onehot,
    symexp,
    symlog,
    symlog_bins,
    twohot,
    twohot_symlog_loss,
    twohot_symlog_mean,
    unimix_log_probs,
)
from vidworld.world_models.rssm.model import RSSMWorldModel
from vidworld.world_models.rssm.networks import RSSMNetworks
from vidworld.world_models.rssm.sequences import SequenceSampler

BINS = torch.tensor([-1.0, 0.0, 1.0])  # three bins in symlog space: easy to compute by hand


# --- two-hot symlog --------------------------------------------------------------------------------------
def test_symlog_symexp_invert_each_other():
    x = torch.tensor([-1000.0, -2.5, 0.0, 0.3, 7.0, 1e5])
    torch.testing.assert_close(symexp(symlog(x)), x)
    assert symlog(torch.tensor(math.e - 1)).item() == pytest.approx(1.0)


def test_twohot_symlog_loss_hand_computed():
    logits = torch.tensor([0.0, math.log(2.0), 0.0])  # softmax = [1/4, 1/2, 1/4]
    # symlog(e^0.25 - 1) = 0.25: weight 0.75 on bin 0.0 and 0.25 on bin 1.0
    # loss = -(0.75 ln 1/2 + 0.25 ln 1/4) = 1.25 ln 2
    r = torch.tensor([math.exp(0.25) - 1, 0.0, -(math.exp(1.5) - 1)])
    torch.testing.assert_close(twohot(symlog(r), BINS),
                               torch.tensor([[0.0, 0.75, 0.25], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    loss = twohot_symlog_loss(logits.expand(3, 3), r, BINS)
    # exactly on a bin: -ln 1/2; below the lowest bin (symlog -1.5): all on bin -1, -ln 1/4
    torch.testing.assert_close(loss, torch.tensor([1.25 * math.log(2), math.log(2), math.log(4)]))


def test_twohot_prediction_is_symexp_of_the_expected_bin():
    # softmax [1/4, 1/4, 1/2] -> expected bin -1/4 + 1/2 = 1/4 -> reward e^0.25 - 1
    mean = twohot_symlog_mean(torch.tensor([0.0, 0.0, math.log(2.0)]), BINS)
    assert mean.item() == pytest.approx(math.exp(0.25) - 1, rel=1e-6)
    # with the real 255 bins, the log of a two-hot target predicts the reward back (in the bins' range)
    bins = symlog_bins()
    r = torch.tensor([-3.7, 0.0, 1.0, 42.0])
    torch.testing.assert_close(twohot_symlog_mean((twohot(symlog(r), bins) + 1e-30).log(), bins), r,
                               rtol=1e-4, atol=1e-5)


# --- KL balancing and free bits --------------------------------------------------------------------------
def _leaf(probs):
    return torch.tensor(probs).log().reshape(1, 1, -1).requires_grad_()  # [B=1, S=1, C]


def test_kl_balance_below_free_bits_is_clipped_with_zero_gradient():
    post, prior = _leaf([0.9, 0.1]), _leaf([0.5, 0.5])
    loss, dyn, rep, kl = kl_balance(post.log_softmax(-1), prior.log_softmax(-1), 1.0, 0.5, 0.1)
    # KL = 0.9 ln 1.8 + 0.1 ln 0.2 = 0.36806 < 1 nat: both terms sit at the free-bits floor
    assert kl.item() == pytest.approx(0.9 * math.log(1.8) + 0.1 * math.log(0.2), rel=1e-5)
    assert loss.item() == pytest.approx(0.5 * 1.0 + 0.1 * 1.0) and dyn.item() == rep.item() == 1.0
    loss.backward()
    assert post.grad.abs().max() == 0 and prior.grad.abs().max() == 0


def test_kl_balance_above_free_bits_weights_dynamics_and_representation():
    p, q = [0.99, 0.01], [0.1, 0.9]
    post, prior = _leaf(p), _leaf(q)
    loss, dyn, rep, _ = kl_balance(post.log_softmax(-1), prior.log_softmax(-1), 1.0, 0.5, 0.1)
    kl = 0.99 * math.log(0.99 / 0.1) + 0.01 * math.log(0.01 / 0.9)  # 2.22461
    assert dyn.item() == pytest.approx(kl, rel=1e-5) and rep.item() == pytest.approx(kl, rel=1e-5)
    assert loss.item() == pytest.approx(0.6 * kl, rel=1e-5)
    loss.backward()
    # the dynamics loss alone moves the prior: 0.5 * dKL/dlogits_q = 0.5 (q - p)
    torch.testing.assert_close(prior.grad.flatten(), 0.5 * torch.tensor([0.1 - 0.99, 0.9 - 0.01]))
    # the representation loss alone moves the posterior: 0.1 * p_i (ln(p_i / q_i) - KL)
    expect = [0.1 * pi * (math.log(pi / qi) - kl) for pi, qi in zip(p, q)]
    torch.testing.assert_close(post.grad.flatten(), torch.tensor(expect), rtol=1e-4, atol=1e-7)


def test_unimix_and_inverse_cdf_sampling_with_straight_through_gradients():
    lp = unimix_log_probs(torch.tensor([100.0, 0.0, 0.0, 0.0]), 0.01)
    torch.testing.assert_close(lp.exp(), torch.tensor([0.9925, 0.0025, 0.0025, 0.0025]))
    logits = torch.tensor([0.2, 0.5, 0.3]).log().expand(3, 3).clone().requires_grad_()
    sample = sample_onehot(logits.log_softmax(-1), torch.tensor([0.1, 0.3, 0.95]))  # cdf 0.2, 0.7, 1.0
    assert torch.equal(sample.detach(), torch.eye(3))
    w = torch.tensor([1.0, 2.0, 3.0])
    (sample * w).sum().backward()
    ref = logits.detach().clone().requires_grad_()
    (ref.softmax(-1) * w).sum().backward()
    torch.testing.assert_close(logits.grad, ref.grad)  # straight-through: the probabilities' gradient


# --- sequence batches ------------------------------------------------------------------------------------
def test_sequence_windows_reset_at_episode_starts():
    # episode 0: 4 frames (0..3), actions 1,0,1, last transition terminal; episode 1: 3 frames (4..6)
    ep = Episodes.from_lists(
        [torch.arange(4.0)[:, None], torch.arange(4.0, 7.0)[:, None]],
        [torch.tensor([1, 0, 1]), torch.tensor([1, 1])],
        [torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.4, 0.5])],
        [torch.tensor([False, False, True]), torch.tensor([False, False])],
    )
    s = SequenceSampler(ep, 4)
    b = s.get(torch.tensor([0, 2]))
    assert b.frames[:, :, 0].tolist() == [[0, 1, 2, 3], [2, 3, 4, 5]]
    assert b.is_first.tolist() == [[True, False, False, False], [True, False, True, False]]
    assert b.prev_actions.tolist() == [[0, 1, 0, 1], [0, 1, 0, 1]]
    torch.testing.assert_close(b.rewards, torch.tensor([[0.0, 0.1, 0.2, 0.3], [0.2, 0.3, 0.0, 0.4]]))
    assert b.cont.tolist() == [[1, 1, 1, 0], [1, 0, 1, 1]]
    assert s.num_starts == 4
    with pytest.raises(ValueError, match="rssm.seq_len=8 is longer than the 7 frames"):
        SequenceSampler(ep, 8)


# --- model -----------------------------------------------------------------------------------------------
def tiny_rssm(seed: int = 0) -> RSSMWorldModel:
    torch.manual_seed(seed)
    nets = RSSMNetworks(frame_size=16, num_actions=3, depth=4, deter=16, hidden=16, stoch=4, classes=4,
                        units=16, head_layers=1)
    return RSSMWorldModel(nets, ActionSpec(n=3), context_length=3).eval()


def test_differentiable_imagination_reaches_actions_and_weights():
    model = tiny_rssm()
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 3, 3, 16, 16), generator=g, dtype=torch.uint8)
    state = model.init(frames, torch.tensor([[0, 1], [2, 2]]))
    assert not state.deter.requires_grad
    _, out = model.step(state, torch.tensor([0, 1]), generator=g)
    assert not out.latent.requires_grad  # the protocol's step keeps no graph by default
    policy_logits = torch.zeros(2, 3, requires_grad=True)
    s, total = state, 0.0
    for _ in range(3):  # backprop through 3 imagined steps, as an actor learning through the dynamics does
        s, out = model.imagine_step(s, policy_logits.softmax(-1), generator=g)
        total = total + out.latent.pow(2).sum() + out.termination_prob.sum()
    total.backward()
    assert policy_logits.grad.abs().sum() > 0
    assert model.networks.gru.linear.weight.grad.abs().sum() > 0
    _, out = model.step(state, torch.tensor([0, 1]), generator=g, differentiable=True)
    assert out.latent.requires_grad
    with pytest.raises(ValueError, match="action_probs must be float"):
        model.imagine_step(state, torch.zeros(2, 2), generator=g)


def test_observe_continues_the_filter_exactly_like_init_on_one_more_frame():
    """Filtering: observe(init(K frames), a, frame K+1) == the same networks' init on all K+1 frames (a
    recurrent filter over the whole history, DreamerV3's acting), not init on the shifted K-frame window."""
    from vidworld.protocol import Filtering
    from vidworld.rl.policies import ContextTracker

    model = tiny_rssm()  # K = 3
    assert isinstance(model, Filtering)
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (2, 4, 3, 16, 16), generator=g, dtype=torch.uint8)
    actions = torch.tensor([[0, 1, 2], [2, 2, 1]])
    observed = model.observe(model.init(frames[:, :3], actions[:, :2]), actions[:, 2], frames[:, 3])
    direct = RSSMWorldModel(model.networks, model.action_spec, context_length=4).eval().init(frames, actions)
    torch.testing.assert_close(observed.deter, direct.deter, rtol=0, atol=1e-6)
    assert torch.equal(observed.stoch, direct.stoch)
    shifted = model.init(frames[:, 1:], actions[:, 1:])
    assert (observed.deter - shifted.deter).abs().max() > 1e-3  # the oldest frame is not forgotten
    # the acting policies' tracker filters with observe (one frame per real step), from the padded start
    tracker = ContextTracker(model)
    first, second = (frames[0, i].permute(1, 2, 0).numpy() for i in (0, 1))
    tracker.reset(first)
    tracker.step(2, second)
    padded = model.init(frames[:1, [0, 0, 0]], torch.zeros(1, 2, dtype=torch.long))
    want = model.observe(padded, torch.tensor([2]), frames[:1, 1])
    assert torch.equal(tracker.state.deter, want.deter) and torch.equal(tracker.state.stoch, want.stoch)
    with pytest.raises(ValueError, match=r"frames must be uint8 \[B=2, 3, 16, 16\]"):
        model.observe(direct, actions[:, 2], frames[:, 3].float())
    with pytest.raises(ValueError, match="action out of range"):
        model.observe(direct, torch.tensor([0, 3]), frames[:, 3])


def test_value_head_is_optional_and_declared():
    model = tiny_rssm()
    g = torch.Generator().manual_seed(0)
    state = model.init(torch.randint(0, 256, (2, 3, 3, 16, 16), generator=g, dtype=torch.uint8),
                       torch.zeros(2, 2, dtype=torch.long))
    assert isinstance(model, ValuePredictor) and not model.has_value and value_function(model) is None
    with pytest.raises(ValueError, match="no value head"):
        model.value(state)
    torch.manual_seed(0)
    nets = RSSMNetworks(frame_size=16, num_actions=3, depth=4, deter=16, hidden=16, stoch=4, classes=4,
                        units=16, head_layers=1, value_discount=0.95)
    with_value = RSSMWorldModel(nets, ActionSpec(n=3), context_length=3).eval()
    v = with_value.value(with_value.init(torch.zeros(2, 3, 3, 16, 16, dtype=torch.uint8),
                                         torch.zeros(2, 2, dtype=torch.long)))
    assert with_value.has_value and v.shape == (2,)
    torch.testing.assert_close(v, torch.zeros(2), atol=1e-6, rtol=0)  # zero-initialised output


def test_presets_match_their_sizes_and_config_errors_name_the_key():
    assert sum(p.numel() for p in RSSMConfig(preset="atari100k").build(64, 6).parameters()) == pytest.approx(
        15.7e6, rel=0.01)  # dreamerv3-torch's Atari-100k world model
    assert RSSMConfig(preset="compact", deter=64).sizes()["deter"] == 64
    with pytest.raises(ConfigError, match="config key 'rssm.preset': must be one of"):
        load_experiment("configs/tiny/rssm.yaml", ["rssm.preset=huge"])
    with pytest.raises(ConfigError, match="config key 'rssm.seq_len': must be >= 1"):
        load_experiment("configs/tiny/rssm.yaml", ["rssm.seq_len=0"])


def test_damaged_folder_names_the_part(tmp_path):
    tiny_rssm().save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "networks" / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="networks: cannot load its RSSMNetworks"):
        load_world_model(tmp_path / "m")


# --- training --------------------------------------------------------------------------------------------
def _cfg(data, run):
    overrides = [f"data.path={data}", f"run_dir={run}", "rssm.train_steps=2", "train.checkpoint_every=1"]
    return load_experiment("configs/tiny/rssm.yaml", overrides)


def test_two_step_training_resumes_bit_identically(cartpole_fixture, tmp_path, capsys):
    whole = train_world_model(_cfg(cartpole_fixture, tmp_path / "whole"), progress=False)
    assert (tmp_path / "whole" / "stage_rssm" / "checkpoints" / "checkpoint_2").is_dir()
    killed = tmp_path / "killed"
    cfg = _cfg(cartpole_fixture, killed)
    train_world_model(cfg, progress=False)
    # a kill after the step-1 checkpoint: the newer checkpoint and the model are gone, the log is torn
    shutil.rmtree(killed / "stage_rssm" / "checkpoints" / "checkpoint_2")
    shutil.rmtree(killed / "model")
    log = killed / "stage_rssm" / "log.jsonl"
    log.write_text(log.read_text().splitlines()[0] + "\n" + '{"stage": "rssm", "st')
    capsys.readouterr()
    train_world_model(cfg, resume=True, progress=True)
    assert "[rssm] resumed at step 1" in capsys.readouterr().out
    assert log.read_text() == (tmp_path / "whole" / "stage_rssm" / "log.jsonl").read_text()
    assert [json.loads(r)["step"] for r in log.read_text().splitlines()] == [1, 2]
    loaded = load_world_model(killed / "model")
    assert isinstance(loaded, RSSMWorldModel) and loaded.meta["env_id"] == "CartPole-v1"
    for (name, a), b in zip(whole.model.networks.state_dict().items(), loaded.networks.state_dict().values()):
        assert torch.equal(a, b), name
    summary = json.loads((killed / "train_summary.json").read_text())
    assert summary["kind"] == "rssm" and summary["rssm_params"] > 0
    assert "value_nll" in json.loads(log.read_text().splitlines()[0]) and loaded.has_value  # tiny config
