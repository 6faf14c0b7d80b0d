
import pytest
import torch

from tests.models.tiny import FRAME, K, random_context, tiny_world_model
from vidworld.world_models.diffusion.denoiser import DenoiserConfig, edm_loss
from vidworld.protocol import index_state, repeat_state
from vidworld.world_models.diffusion.model import DiffusionWorldModel
from vidworld.world_models.diffusion.vae import FrameVAE


def test_shapes_of_init_step_decode():
    model = tiny_world_model()
    frames, actions = random_context(5)
    state = model.init(frames, actions)
    assert state.latents.shape == (5, K, 4, 4, 4) and state.actions.shape == (5, K - 1)
    new, out = model.step(state, torch.tensor([0, 1, 0, 1, 1]), generator=torch.Generator().manual_seed(0))
    assert out.latent.shape == (5, 4, 4, 4)
    assert out.reward.shape == out.termination_prob.shape == out.terminated.shape == (5,)
    assert out.terminated.dtype == torch.bool
    assert ((out.termination_prob >= 0) & (out.termination_prob <= 1)).all()
    assert torch.equal(new.latents[:, -1], out.latent) and torch.equal(new.latents[:, :-1], state.latents[:, 1:])
    assert new.actions[:, -1].tolist() == [0, 1, 0, 1, 1]
    img = model.decode(new)
    assert img.shape == (5, 3, FRAME, FRAME) and img.dtype == torch.uint8
    assert model.reconstruct(frames[:, 0]).shape == (5, 3, FRAME, FRAME)


def test_step_deterministic_under_seeded_generator_and_batch_independent_of_branching():
    model = tiny_world_model()
    frames, actions = random_context(2)
    state = model.init(frames, actions)
    a = torch.tensor([1, 0])
    s1, o1 = model.step(state, a, generator=torch.Generator().manual_seed(3))
    s2, o2 = model.step(state, a, generator=torch.Generator().manual_seed(3))
    _, o3 = model.step(state, a, generator=torch.Generator().manual_seed(4))
    assert torch.equal(o1.latent, o2.latent) and torch.equal(o1.reward, o2.reward)
    assert not torch.equal(o1.latent, o3.latent)
    # planners branch by repeating/indexing states
    rep = repeat_state(state, 3)
    assert rep.latents.shape[0] == 6 and torch.equal(index_state(rep, 3).latents, state.latents[1:2])


def test_actions_change_the_prediction():
    model = tiny_world_model()
    frames, actions = random_context(1)
    state = model.init(frames, actions)
    _, o0 = model.step(state, torch.tensor([0]), generator=torch.Generator().manual_seed(0))
    _, o1 = model.step(state, torch.tensor([1]), generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(o0.latent, o1.latent)


def test_save_load_round_trip_gives_equal_outputs(tmp_path):
    model = tiny_world_model()
    model.meta["env_id"] = "CartPole-v1"
    model.save_pretrained(tmp_path / "wm")
    loaded = DiffusionWorldModel.from_pretrained(tmp_path / "wm")
    assert loaded.meta["env_id"] == "CartPole-v1" and loaded.action_spec == model.action_spec
    assert loaded.sampler_config == model.sampler_config
    frames, actions = random_context(3)
    for m in (model, loaded):
        s = m.init(frames, actions)
        s, o = m.step(s, torch.tensor([0, 1, 1]), generator=torch.Generator().manual_seed(9))
        m._out = (o.latent, o.reward, o.termination_prob, m.decode(s))
    for x, y in zip(model._out, loaded._out):
        assert torch.equal(x, y)
    # saving again over the same folder replaces it atomically (no leftovers)
    model.save_pretrained(tmp_path / "wm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wm"]


def test_training_loss_decreases_on_a_fixed_batch():
    model = tiny_world_model()
    den = model.denoiser.train()
    cfg = DenoiserConfig()
    g = torch.Generator().manual_seed(0)
    target = torch.randn(8, 4, 4, 4, generator=g)
    context = torch.randn(8, K, 4, 4, 4, generator=g)
    actions = torch.randint(0, 2, (8, K), generator=g)
    opt = torch.optim.Adam(den.parameters(), lr=3e-3)
    losses = []
    for i in range(40):
        loss = edm_loss(den, target, context, actions, cfg, generator=torch.Generator().manual_seed(i % 4))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-4:]) < 0.7 * sum(losses[:4])


def test_bad_inputs_raise_clear_errors(tmp_path):
    model = tiny_world_model()
    frames, actions = random_context(2)
    with pytest.raises(ValueError, match="K=3"):
        model.init(frames[:, :2], actions)
    with pytest.raises(ValueError, match="K-1=2"):
        model.init(frames, actions[:, :1])
    with pytest.raises(ValueError, match="uint8"):
        model.init(frames.float(), actions)
    with pytest.raises(ValueError, match=r"3, 16, 16"):
        model.init(frames[..., :8, :8], actions)
    state = model.init(frames, actions)
    with pytest.raises(ValueError, match="out of range"):
        model.step(state, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"shape \[B=2\]"):
        model.step(state, torch.tensor([0, 1, 1]))
    with pytest.raises(FileNotFoundError, match="not found"):
        DiffusionWorldModel.from_pretrained(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a vidworld world model"):
        DiffusionWorldModel.from_pretrained(tmp_path / "empty")
    model.save_pretrained(tmp_path / "wm")
    import shutil

    shutil.rmtree(tmp_path / "wm" / "heads")
    with pytest.raises(ValueError, match=r"missing part\(s\) \['heads'\]"):
        DiffusionWorldModel.from_pretrained(tmp_path / "wm")


def test_mismatched_parts_are_rejected():
    model = tiny_world_model()
    from vidworld.world_models.diffusion.heads import RewardTerminationHead

    heads = RewardTerminationHead(latent_channels=4, context_length=K + 1, num_actions=2, channels=(8,), cond_dim=8)
    with pytest.raises(ValueError, match="context_length"):
        DiffusionWorldModel(model.vae, model.denoiser, heads)


def test_delta_target_round_trip_and_delta_model_steps():
    from vidworld.world_models.diffusion.denoiser import ActionDenoiser, from_target, to_target

    den = ActionDenoiser(latent_channels=4, context_length=K, num_actions=2, channels=(8, 16), cond_dim=16,
                         action_embed_dim=4, predict_delta=True, delta_scale=7.0)
    ctx, nxt = torch.randn(2, K, 4, 4, 4), torch.randn(2, 4, 4, 4)
    t = to_target(den.config, nxt, ctx)
    assert torch.allclose(t, (nxt - ctx[:, -1]) * 7.0)
    assert torch.allclose(from_target(den.config, t, ctx), nxt, atol=1e-6)
    # a delta model steps to: last latent + (sampled change) / delta_scale
    model = tiny_world_model()
    model = DiffusionWorldModel(model.vae, den, model.heads, model.sampler_config)
    frames, actions = random_context(2)
    state = model.init(frames, actions)
    a = torch.tensor([0, 1])
    _, out = model.step(state, a, generator=torch.Generator().manual_seed(0))
    acts = torch.cat([state.actions, a[:, None]], 1)
    sample = model.sampler.sample(lambda x, s: den(x, s, state.latents, acts, torch.zeros(2)), (2, 4, 4, 4),
                                  generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out.latent, state.latents[:, -1] + sample / 7.0, atol=1e-6)


def test_anchor_relative_decoding_reproduces_the_real_context_frame():
    model = tiny_world_model()
    frames, actions = random_context(2)
    state = model.init(frames, actions)
    assert torch.equal(model.decode(state), frames[:, -1])  # Dec(z) + (x - Dec(z)) == x
    model.decode_relative = False
    direct = model.init(frames, actions)
    assert direct.pixel_correction is None and not torch.equal(model.decode(direct), frames[:, -1])


def test_decode_from_decodes_imagined_latents_relative_to_the_real_anchor():
    model = tiny_world_model()
    frames, actions = random_context(1)
    state = model.init(frames, actions)
    # the state's own newest latent decodes exactly like the state (anchor correction included) ...
    assert torch.equal(model.decode_from(state, state.latents[:, -1]), model.decode(state))
    # ... and differently from the bare latent (the raw VAE error on the real frame is corrected)
    assert not torch.equal(model.decode_from(state, state.latents[:, -1]), model.decode(state.latents[:, -1]))
    _, out = model.step(state, torch.tensor([1]), generator=torch.Generator().manual_seed(0))
    imagined = torch.cat([out.latent, out.latent])
    assert model.decode_from(state, imagined).shape == (2, 3, model.frame_size, model.frame_size)
    with pytest.raises(ValueError, match="batch-1 state"):
        model.decode_from(model.init(*random_context(2)), imagined)


def test_init_latents_is_init_without_the_encode():
    """A state built from cached latents features and steps exactly like `init` on the same frames."""
    model = tiny_world_model()
    frames, actions = random_context(3)
    state = model.init(frames, actions)
    cached = model.encode(frames.flatten(0, 1)).unflatten(0, frames.shape[:2])
    fast = model.init_latents(cached, actions)
    assert fast.pixel_correction is None and torch.equal(model.features(fast), model.features(state))
    a = torch.tensor([1, 0, 1])
    _, o1 = model.step(state, a, generator=torch.Generator().manual_seed(5))
    _, o2 = model.step(fast, a, generator=torch.Generator().manual_seed(5))
    assert torch.equal(o1.latent, o2.latent) and torch.equal(o1.reward, o2.reward)
    with pytest.raises(ValueError, match=r"latents must be \[B, K=3, 4, 4, 4\]"):
        model.init_latents(cached[:, 1:], actions)
    with pytest.raises(ValueError, match="context_actions must be"):
        model.init_latents(cached, actions[:, :1])


def test_fit_latent_stats_measures_the_motion_scale_within_episodes_only():
    """motion_scale = 1 / RMS of consecutive normalised latents' change, pairs inside an episode only."""
    vae = FrameVAE(frame_size=FRAME, block_out_channels=(4, 8, 8), latent_channels=4)
    # two episodes of 3 frames; within each, every element moves by +-d; across the boundary a jump of 100
    d = 0.5
    ep1 = torch.stack([torch.full((4, 4, 4), v) for v in (0.0, d, 0.0)])
    ep2 = torch.stack([torch.full((4, 4, 4), v) for v in (100.0, 100.0 + d, 100.0 + 2 * d)])
    raw = torch.cat([ep1, ep2])
    previous = torch.tensor([0, 0, 1, 3, 3, 4])  # Episodes.previous_obs_index: a first frame is its own
    shift, scale = vae.fit_latent_stats(raw, previous)
    assert scale == pytest.approx(1.0 / raw.std().item())
    # four moving pairs, each |change| = d everywhere: RMS in normalised units = d * scale
    assert vae.config.motion_scale == pytest.approx(1.0 / (d * scale), rel=1e-5)
    vae.fit_latent_stats(raw)  # without predecessors nothing is measured
    assert vae.config.motion_scale == 0.0


def test_features_show_the_newest_latent_and_its_scaled_change():
    model = tiny_world_model()
    frames, actions = random_context(2)
    state = model.init(frames, actions)
    z = state.latents.flatten(2).float()
    assert torch.equal(model.features(state), z[:, -2:].flatten(1))  # no motion scale measured: stacked
    model.vae.register_to_config(motion_scale=7.0)
    f = model.features(state)
    assert f.shape == (2, model.feature_dim)
    assert torch.equal(f[:, : z.shape[2]], z[:, -1])
    assert torch.allclose(f[:, z.shape[2] :], (z[:, -1] - z[:, -2]) * 7.0)
