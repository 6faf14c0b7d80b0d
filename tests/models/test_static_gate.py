"""The static gate: an exact "nothing changed" path of the diffusion world model (static_gate.py)."""

import json

import pytest
import torch

from tests.models.tiny import K, random_context, tiny_world_model
from vidworld.config import ConfigError
from vidworld.experiment import load_experiment
from vidworld.train.config import TrainConfig
from vidworld.train.episodes import Episodes, WindowSampler
from vidworld.world_models import load_world_model
from vidworld.world_models.diffusion.config import DiffusionConfig
from vidworld.world_models.diffusion.model import DiffusionWorldModel
from vidworld.world_models.diffusion.static_gate import (
    StaticGate,
    StaticGateConfig,
    static_gate_loss,
    unchanged_target,
)
from vidworld.world_models.diffusion.train_dynamics import train_dynamics


TINY = dict(latent_channels=4, context_length=K, num_actions=2, channels=(8,), cond_dim=8)


def tiny_gate(bias: float | None = None, **kw) -> StaticGate:
    torch.manual_seed(1)
    gate = StaticGate(**{**TINY, **kw})
    if bias is not None:
        with torch.no_grad():
            gate.out[-1].bias.fill_(bias)
    return gate.eval()


def gated(base: DiffusionWorldModel, gate: StaticGate) -> DiffusionWorldModel:
    model = DiffusionWorldModel(base.vae, base.denoiser, base.heads, base.sampler_config, static_gate=gate)
    return model.eval()


def test_unchanged_target_by_hand():
    last = torch.zeros(4, 2, 3, 3)
    nxt = last.clone()
    nxt[1, 1, 2, 0] = 0.5  # one element differs
    nxt[2] += 5e-7  # every element differs, but below the 1e-6 tolerance
    nxt[3, 0, 0, 0] = 2e-6  # one element just above it
    assert unchanged_target(last, nxt).tolist() == [True, False, True, False]
    assert unchanged_target(last, nxt).dtype == torch.bool


def test_a_sure_gate_copies_the_newest_latent_and_a_closed_gate_is_the_sampler():
    base = tiny_world_model()
    state = base.init(*random_context(3))
    a = torch.tensor([0, 1, 1])
    _, plain = base.step(state, a, generator=torch.Generator().manual_seed(2))
    new, out = gated(base, tiny_gate(20.0)).step(state, a, generator=torch.Generator().manual_seed(2))
    assert torch.equal(out.latent, state.latents[:, -1])
    assert torch.equal(new.latents, torch.cat([state.latents[:, 1:], state.latents[:, -1:]], 1))
    assert not torch.equal(plain.latent, state.latents[:, -1])
    # the heads judge the transition that was taken: the copied latent, not the discarded sample
    want = base.predict_heads(state, a, state.latents[:, -1])
    assert torch.equal(out.reward, want.reward) and torch.equal(out.termination_prob, want.termination_prob)
    _, closed = gated(base, tiny_gate(-20.0)).step(state, a, generator=torch.Generator().manual_seed(2))
    assert torch.equal(closed.latent, plain.latent) and torch.equal(closed.reward, plain.reward)


class ActionGate(StaticGate):
    """A hand-set gate: sure "unchanged" for action 1, sure "changed" for action 0."""

    def forward(self, context, actions, history=None):
        return torch.where(actions[:, -1] == 1, 20.0, -20.0)


def test_the_gate_decides_per_row_in_one_batched_step():
    base = tiny_world_model()
    state = base.init(*random_context(4, seed=3))
    a = torch.tensor([1, 0, 0, 1])
    model = gated(base, ActionGate(**TINY))
    _, out = model.step(state, a, generator=torch.Generator().manual_seed(5))
    _, plain = base.step(state, a, generator=torch.Generator().manual_seed(5))
    copy = a == 1
    assert torch.equal(out.latent[copy], state.latents[copy, -1])
    assert torch.equal(out.latent[~copy], plain.latent[~copy])


def test_round_trip_keeps_the_gate_and_models_without_one_still_load(tmp_path):
    base = tiny_world_model()
    model = gated(base, tiny_gate(0.3, threshold=0.4))
    model.save_pretrained(tmp_path / "wm")
    assert (tmp_path / "wm" / "static_gate" / "static_gate_config.json").is_file()
    loaded = load_world_model(tmp_path / "wm")
    assert loaded.static_gate is not None and loaded.static_gate.config.threshold == 0.4
    state = model.init(*random_context(3, seed=4))
    ctx, acts = state.latents, torch.cat([state.actions, torch.ones(3, 1, dtype=torch.long)], 1)
    assert torch.equal(model.static_gate(ctx, acts), loaded.static_gate(ctx, acts))
    a = torch.tensor([1, 0, 1])
    _, o1 = model.step(state, a, generator=torch.Generator().manual_seed(1))
    _, o2 = loaded.step(state, a, generator=torch.Generator().manual_seed(1))
    assert torch.equal(o1.latent, o2.latent) and torch.equal(o1.reward, o2.reward)
    # with_sampler keeps the gate (planners rebuild the model with fewer sampler steps)
    assert model.with_sampler(model.sampler_config).static_gate is model.static_gate
    base.save_pretrained(tmp_path / "plain")
    assert not (tmp_path / "plain" / "static_gate").exists()
    assert load_world_model(tmp_path / "plain").static_gate is None


def test_a_gate_that_disagrees_with_the_denoiser_is_rejected():
    base = tiny_world_model()
    wrong = StaticGate(**{**TINY, "context_length": K + 1})
    with pytest.raises(ValueError, match="static gate and denoiser disagree: context_length 4 vs 3"):
        gated(base, wrong)
    with pytest.raises(ValueError, match=r"history dims \{.*'static_gate': 8"):
        gated(base, StaticGate(**TINY, history_dim=8))


def synthetic_latents(episodes: int, steps: int, seed: int) -> Episodes:
    """Random latents [4, 4, 4]: action 1 leaves the latent exactly unchanged, action 0 draws a new one."""
    g = torch.Generator().manual_seed(seed)
    obs, acts = [], []
    for _ in range(episodes):
        a = torch.randint(0, 2, (steps,), generator=g)
        z = [torch.randn(4, 4, 4, generator=g)]
        for t in range(steps):
            z.append(z[-1].clone() if a[t] == 1 else torch.randn(4, 4, 4, generator=g))
        obs.append(torch.stack(z))
        acts.append(a)
    zeros = [torch.zeros(steps) for _ in range(episodes)]
    return Episodes.from_lists(obs, acts, zeros, [z.bool() for z in zeros])


def test_the_gate_learns_which_actions_leave_the_frame_unchanged():
    train = WindowSampler(synthetic_latents(8, 30, seed=0), K)
    held_out = WindowSampler(synthetic_latents(4, 30, seed=1), K).get(torch.arange(120))
    cfg = StaticGateConfig(enabled=True)
    gate = tiny_gate().train()
    opt = torch.optim.Adam(gate.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        b = train.sample(32, g)
        loss, _ = static_gate_loss(gate, b.context, b.actions, b.target, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        _, logs = static_gate_loss(gate.eval(), held_out.context, held_out.actions, held_out.target, cfg)
    label = unchanged_target(held_out.context[:, -1], held_out.target)
    assert 0.3 < label.float().mean() < 0.7  # both classes are well represented
    assert logs["static_acc"] > 0.95, logs


def test_train_dynamics_trains_and_returns_the_gate(tmp_path):
    dcfg = load_experiment(None, [
        "diffusion.vae.latent_channels=4", "diffusion.denoiser.channels=[8,16]",
        "diffusion.denoiser.cond_dim=16", "diffusion.denoiser.action_embed_dim=4",
        "diffusion.heads.channels=[8,8]", "diffusion.heads.cond_dim=8", "diffusion.value.enabled=false",
        "diffusion.static_gate.enabled=true", "diffusion.static_gate.channels=[8]",
        "diffusion.static_gate.cond_dim=8",
    ]).diffusion
    tcfg = TrainConfig(dynamics_steps=2, dynamics_batch_size=8, warmup_steps=1, checkpoint_every=2,
                       log_every=1, tensorboard=False, num_threads=1)
    res = train_dynamics(synthetic_latents(2, 10, seed=0), 2, K, dcfg, tcfg, tmp_path / "dyn", progress=False)
    assert isinstance(res.static_gate, StaticGate) and not res.static_gate.training
    rows = [json.loads(x) for x in (tmp_path / "dyn" / "log.jsonl").read_text().splitlines()]
    assert all("static_bce" in r and 0 <= r["static_acc"] <= 1 for r in rows) and len(rows) == 2


def test_config_builds_the_gate_only_when_enabled_and_names_bad_keys():
    assert DiffusionConfig().build_static_gate(K, 2) is None
    cfg = load_experiment(None, ["diffusion.static_gate.enabled=true", "diffusion.static_gate.threshold=0.7"])
    gate = cfg.diffusion.build_static_gate(K, 3)
    assert isinstance(gate, StaticGate) and gate.config.threshold == 0.7 and gate.config.num_actions == 3
    key = "diffusion.static_gate"
    for override, message in [
        ("threshold=1.0", f"config key '{key}.threshold': must be in (0, 1), got 1.0"),
        ("threshold=0", f"config key '{key}.threshold': must be in (0, 1), got 0"),
        ("loss_weight=-1", f"config key '{key}.loss_weight': must be >= 0, got -1.0"),
        ("pos_weight=0", f"config key '{key}.pos_weight': must be > 0"),
    ]:
        with pytest.raises(ConfigError) as info:
            load_experiment(None, [f"{key}.{override}"])
        assert message in str(info.value) and "\n" not in str(info.value)
