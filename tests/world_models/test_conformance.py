"""The conformance suite: what every world model of the family must do (protocol v2, `vidworld.protocol`).

Every model in MODELS runs every test. A new kind (RSSM, MuZero) joins by adding one factory: a function
returning a `Case` (the model, a valid batch-B context, and whether it can be saved as a registered kind).
Tests that need a capability (pixel decoding, a saved folder) say so and run where it is declared.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from torch import Tensor

from tests.models.tiny import FRAME, HISTORY, K, random_context, tiny_history_model, tiny_world_model, tiny_world_on_disk
from tests.planning.toy_models import ToyCartPole
from vidworld.envs.world_model_env import WorldModelEnv
from vidworld.protocol import (
    ActionSpec,
    PixelDecoder,
    StepOut,
    WorldModel,
    cat_states,
    index_state,
    repeat_state,
    state_batch_size,
)
from vidworld.world_models import load_world_model
from vidworld.world_models.copy_last import CopyLastFrameModel
from vidworld.world_models.diffusion.model import DiffusionWorldModel
from vidworld.world_models.diffusion.static_gate import StaticGate
from vidworld.world_models.muzero.config import MuZeroNetConfig
from vidworld.world_models.muzero.model import build_model as build_muzero
from vidworld.world_models.rssm.model import RSSMWorldModel
from vidworld.world_models.rssm.networks import RSSMNetworks

B = 3


@dataclass
class Case:
    model: WorldModel
    frames: Tensor  # uint8 [B, K, 3, H, W] (a state-observation model: float [B, K, D])
    actions: Tensor  # long [B, K-1]
    saveable: bool  # a registered kind: save_pretrained -> load_world_model round trip
    stochastic: bool  # different generator seeds give different futures


def diffusion_case() -> Case:
    frames, actions = random_context(B, seed=1)
    return Case(tiny_world_model(), frames, actions, saveable=True, stochastic=True)


def diffusion_history_case() -> Case:
    g = torch.Generator().manual_seed(4)
    frames = torch.randint(0, 256, (B, HISTORY, 3, FRAME, FRAME), generator=g, dtype=torch.uint8)
    actions = torch.randint(0, 2, (B, HISTORY - 1), generator=g)
    return Case(tiny_history_model(), frames, actions, saveable=True, stochastic=True)


def diffusion_static_gate_case() -> Case:
    """The tiny diffusion model with a static gate sure that nothing changes (output bias +20): every step
    copies the newest latent exactly, so its futures are deterministic (mixed rows: test_static_gate.py)."""
    base = tiny_world_model()
    torch.manual_seed(0)
    gate = StaticGate(latent_channels=4, context_length=K, num_actions=2, channels=(8,), cond_dim=8)
    with torch.no_grad():
        gate.out[-1].bias.fill_(20.0)
    model = DiffusionWorldModel(base.vae, base.denoiser, base.heads, base.sampler_config, static_gate=gate)
    frames, actions = random_context(B, seed=3)
    return Case(model.eval(), frames, actions, saveable=True, stochastic=False)


def copy_last_case() -> Case:
    frames, actions = random_context(B, seed=2)
    return Case(CopyLastFrameModel(ActionSpec(n=2), K, FRAME, meta={"env_id": "CartPole-v1"}), frames, actions,
                saveable=True, stochastic=False)


def toy_cartpole_case() -> Case:
    model = ToyCartPole()
    phys = torch.tensor([[0.0, 0.1, 0.02, -0.1], [0.3, 0.0, -0.05, 0.2], [-0.2, -0.1, 0.0, 0.0]],
                        dtype=torch.float64)
    frames = torch.stack([model.encode(phys)] * model.context_length, 1)
    actions = torch.zeros(B, model.context_length - 1, dtype=torch.long)
    return Case(model, frames, actions, saveable=False, stochastic=False)


def rssm_case() -> Case:
    """A tiny DreamerV3 RSSM (16x16 frames, GRU 16, 4 x 4 categoricals); outputs perturbed off their zero
    init so rewards differ between rows."""
    torch.manual_seed(0)
    nets = RSSMNetworks(frame_size=FRAME, num_actions=2, depth=4, deter=16, hidden=16, stoch=4, classes=4,
                        units=16, head_layers=1)
    with torch.no_grad():
        nets.reward_out.weight.normal_(0, 0.5)
    frames, actions = random_context(B, seed=5)
    return Case(RSSMWorldModel(nets, ActionSpec(n=2), K, meta={"env_id": "CartPole-v1"}).eval(), frames, actions,
                saveable=True, stochastic=True)


def _muzero(observation: str, shape: tuple[int, ...]):
    """A tiny MuZero; its zero-initialised output layers perturbed so rewards and values differ between rows."""
    torch.manual_seed(0)
    net = MuZeroNetConfig(observation=observation, latent_dim=8, hidden=16, layers=2, channels=(4, 8))
    model = build_muzero(net, shape, K, ActionSpec(n=2), {"env_id": "CartPole-v1"})
    with torch.no_grad():
        for lin in (model.nets.reward_out, model.nets.value_out, model.nets.policy_out):
            lin.weight.normal_(0, 0.5)
    return model


def muzero_case() -> Case:
    """MuZero from 16x16 frames (no pixel decoding: the pixel-only checks skip through PixelDecoder)."""
    frames, actions = random_context(B, seed=6)
    return Case(_muzero("pixels", (3, FRAME, FRAME)), frames, actions, saveable=True, stochastic=False)


def muzero_state_case() -> Case:
    """MuZero on the env's state vector: observations float [B, K, 4] instead of frames."""
    g = torch.Generator().manual_seed(7)
    return Case(_muzero("state", (4,)), torch.randn(B, K, 4, generator=g), torch.randint(0, 2, (B, K - 1), generator=g),
                saveable=True, stochastic=False)


MODELS: dict[str, Callable[[], Case]] = {
    "diffusion": diffusion_case,
    "diffusion_history": diffusion_history_case,
    "diffusion_static_gate": diffusion_static_gate_case,
    "copy_last": copy_last_case,
    "toy_cartpole": toy_cartpole_case,
    "rssm": rssm_case,
    "muzero": muzero_case,
    "muzero_state": muzero_state_case,
}


@pytest.fixture(params=sorted(MODELS))
def case(request) -> Case:
    return MODELS[request.param]()


def _step(case: Case, seed: int, actions: Tensor | None = None):
    state = case.model.init(case.frames, case.actions)
    acts = torch.arange(B) % case.model.action_spec.n if actions is None else actions
    return state, *case.model.step(state, acts, generator=torch.Generator().manual_seed(seed))


def _tensors(state) -> list[Tensor]:
    return [getattr(state, f.name) for f in dataclasses.fields(state) if isinstance(getattr(state, f.name), Tensor)]


def test_declares_the_protocol(case):
    m = case.model
    assert isinstance(m, WorldModel), "init, step, features, action_spec, context_length, frame_size, ..."
    assert isinstance(m.device, torch.device) and isinstance(m.meta, dict)
    assert m.context_length == case.frames.shape[1] and m.feature_dim > 0


def test_shapes_and_dtypes(case):
    state, nxt, out = _step(case, seed=0)
    assert dataclasses.is_dataclass(state) and state_batch_size(state) == B == state_batch_size(nxt)
    assert all(t.shape[0] == B for t in _tensors(nxt)), "every state tensor is batch-first"
    assert isinstance(out, StepOut) and out.latent.shape[0] == B
    assert out.reward.shape == (B,) and out.reward.dtype.is_floating_point
    assert out.terminated.shape == (B,) and out.terminated.dtype == torch.bool
    p = out.termination_prob
    assert p.shape == (B,) and bool(((p >= 0) & (p <= 1)).all())
    for s in (state, nxt):
        f = case.model.features(s)
        assert f.shape == (B, case.model.feature_dim) and f.dtype == torch.float32 and bool(f.isfinite().all())
    if isinstance(case.model, PixelDecoder):
        frames = case.model.decode(nxt)
        assert frames.dtype == torch.uint8 and frames.shape == (B, *case.frames.shape[2:])
        one = index_state(state, 0)
        assert case.model.decode_from(one, out.latent).shape == frames.shape


def test_same_generator_seed_same_future(case):
    _, a, out_a = _step(case, seed=7)
    _, b, out_b = _step(case, seed=7)
    for x, y in zip(_tensors(a) + [out_a.reward, out_a.termination_prob],
                    _tensors(b) + [out_b.reward, out_b.termination_prob]):
        assert torch.equal(x, y)
    if case.stochastic:
        _, c, _ = _step(case, seed=8)
        assert any(not torch.equal(x, y) for x, y in zip(_tensors(a), _tensors(c)))


def test_branching_with_state_helpers_keeps_rows(case):
    state = case.model.init(case.frames, case.actions)
    feats = case.model.features(state)
    torch.testing.assert_close(case.model.features(repeat_state(state, 4)), feats.repeat_interleave(4, 0))
    both = cat_states([state, index_state(state, slice(1, 3))])
    torch.testing.assert_close(case.model.features(both), torch.cat([feats, feats[1:3]]))
    if not case.stochastic:  # a branch of a deterministic model steps exactly like its source row
        acts = torch.arange(B) % case.model.action_spec.n
        _, ref = case.model.step(state, acts)
        _, branched = case.model.step(repeat_state(state, 2), acts.repeat_interleave(2))
        torch.testing.assert_close(branched.reward, ref.reward.repeat_interleave(2))


@pytest.mark.parametrize("bad", ["out_of_range", "negative", "float", "wrong_batch"])
def test_bad_actions_raise_value_error(case, bad):
    state = case.model.init(case.frames, case.actions)
    n = case.model.action_spec.n
    acts = {"out_of_range": torch.full((B,), n), "negative": torch.full((B,), -1),
            "float": torch.zeros(B), "wrong_batch": torch.zeros(B + 1, dtype=torch.long)}[bad]
    with pytest.raises(ValueError):
        case.model.step(state, acts)


def test_bad_context_raises_value_error(case):
    if isinstance(case.model, ToyCartPole):
        pytest.skip("test model decodes physics from its frames; it asserts rather than validates")
    with pytest.raises(ValueError):
        case.model.init(case.frames[:, :-1], case.actions)  # one frame short
    with pytest.raises(ValueError):  # frames must be uint8; states (float) must not be
        case.model.init(case.frames.float() if case.frames.dtype == torch.uint8 else case.frames.to(torch.uint8),
                        case.actions)


def test_save_load_round_trip(case, tmp_path):
    if not case.saveable:
        pytest.skip("test-only model, not a registered kind")
    case.model.save_pretrained(tmp_path / "m")
    loaded = load_world_model(tmp_path / "m")
    assert type(loaded) is type(case.model) and loaded.meta == case.model.meta
    _, a, out_a = _step(case, seed=3)
    _, b, out_b = _step(Case(loaded, case.frames, case.actions, True, case.stochastic), seed=3)
    for x, y in zip(_tensors(a) + [out_a.reward], _tensors(b) + [out_b.reward]):
        assert torch.equal(x, y)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp left behind"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A real 16x16 CartPole dataset for contexts (see tests/models/tiny.py)."""
    return tiny_world_on_disk(tmp_path_factory.mktemp("conformance"))


@pytest.mark.parametrize("obs_type", ["pixels", "features"])
def test_gymnasium_env_checker(case, world, obs_type):
    if case.frames.shape[-2:] != (FRAME, FRAME):
        pytest.skip("its frames are not the dataset's square 16x16 frames")
    if obs_type == "pixels" and not isinstance(case.model, PixelDecoder):
        pytest.skip("not a pixel decoder")
    env = WorldModelEnv(case.model, dataset=world.data, obs_type=obs_type, render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    # Features are unbounded by nature; gymnasium only advises against infinite Box bounds.
    assert not [str(w.message) for w in caught if "infinity" not in str(w.message)]
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = env.step(1)
    assert env.observation_space.contains(obs) and isinstance(reward, float) and 0 <= info["termination_prob"] <= 1
    if obs_type == "features":
        assert obs.shape == (case.model.feature_dim,)
    assert isinstance(np.asarray(obs), np.ndarray)


def test_observe_matches_init_on_the_extended_context(case):
    """Filtering models: observe(init(ctx), a, real frame) == init(ctx shifted by that real step)."""
    from vidworld.protocol import Filtering

    if not isinstance(case.model, Filtering):
        pytest.skip("not a Filtering model")
    if isinstance(case.model, RSSMWorldModel):  # a recurrent filter over the whole history (DreamerV3's acting)
        pytest.skip("RSSM: observe == init with one more context frame, not the shifted window (test_rssm.py)")
    state = case.model.init(case.frames, case.actions)
    acts = torch.arange(B) % case.model.action_spec.n
    new_frame = case.frames[:, 0]  # any real-looking frame
    observed = case.model.observe(state, acts, new_frame)
    frames = torch.cat([case.frames[:, 1:], new_frame[:, None]], 1)
    actions = torch.cat([case.actions[:, 1:], acts[:, None]], 1) if case.actions.shape[1] else case.actions
    direct = case.model.init(frames, actions)
    torch.testing.assert_close(case.model.features(observed), case.model.features(direct), rtol=1e-4, atol=1e-4)
    if isinstance(case.model, PixelDecoder):
        assert (case.model.decode(observed).int() - case.model.decode(direct).int()).abs().max() <= 1
