"""agent.gradient on the real RSSM: "dynamics" sends the actor's gradient through the imagined dynamics
(straight-through actions into `imagine_step`), "reinforce" does not touch the dynamics' graph, "both"
mixes the two, "auto" picks by the model's capability; the world model is never updated by the actor."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tests.models.tiny import random_context, tiny_world_model
from vidworld.agents import ActorCritic, ActorCriticConfig
from vidworld.config import FieldError
from vidworld.protocol import ActionSpec
from vidworld.world_models.rssm.model import RSSMWorldModel
from vidworld.world_models.rssm.networks import RSSMNetworks

# fp32: the tests compare estimators exactly
CFG = ActorCriticConfig(horizon=4, hidden=32, layers=1, bins=31, entropy_coef=0.0, precision="fp32")


def tiny_rssm() -> RSSMWorldModel:
    torch.manual_seed(0)
    nets = RSSMNetworks(frame_size=16, num_actions=3, depth=4, deter=16, hidden=16, stoch=4, classes=4,
                        units=16, head_layers=1)
    with torch.no_grad():  # zero-initialised reward output: perturb so imagined rewards depend on actions
        nets.reward_out.weight.normal_(0, 0.5)
    return RSSMWorldModel(nets, ActionSpec(n=3), context_length=3).eval()


def start_states(model: RSSMWorldModel, batch: int = 8):
    g = torch.Generator().manual_seed(3)
    frames = torch.randint(0, 256, (batch, 3, 3, 16, 16), generator=g, dtype=torch.uint8)
    return model.init(frames, torch.randint(0, 3, (batch, 2), generator=g))


def spy_on_actions(model: RSSMWorldModel, monkeypatch) -> list[float]:
    """Record |d actor loss / d action| of every straight-through action `imagine_step` receives."""
    seen: list[float] = []
    real = model.imagine_step

    def spy(state, action_probs, generator=None):
        if action_probs.requires_grad:
            action_probs.register_hook(lambda g: seen.append(float(g.abs().sum())))
        return real(state, action_probs, generator)

    monkeypatch.setattr(model, "imagine_step", spy)
    return seen


def one_update(gradient: str, model: RSSMWorldModel, mix: float = 0.0) -> tuple[ActorCritic, dict]:
    torch.manual_seed(1)
    ac = ActorCritic(replace(CFG, gradient=gradient, gradient_mix=mix), model.feature_dim, model.action_spec)
    metrics = ac.update(model, start_states(model), torch.Generator().manual_seed(0))
    return ac, metrics


def test_dynamics_gradient_reaches_the_actor_through_the_rssm(monkeypatch):
    model = tiny_rssm()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = spy_on_actions(model, monkeypatch)
    ac, _ = one_update("dynamics", model)
    # every imagined step took a straight-through action, and the actor loss sent gradient back into it
    assert len(seen) == CFG.horizon and all(s > 0 for s in seen), seen
    assert ac.gradient_mode(model) == "dynamics"
    # the world model is not trained by the actor: no gradient left on it, weights unchanged
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_reinforce_keeps_no_graph_through_the_rssm(monkeypatch):
    model = tiny_rssm()
    seen = spy_on_actions(model, monkeypatch)
    one_update("reinforce", model)
    assert seen == []  # model.step ran under no_grad: nothing flowed back into the dynamics
    assert all(p.grad is None for p in model.parameters())


def test_both_mixes_the_two_estimators_exactly():
    """Same RNG draws in every mode (the rollouts and the critic agree); the actor's step is the
    REINFORCE one at mix 0 and the dynamics one at mix 1, and those two differ."""
    model = tiny_rssm()
    reinforce, m_r = one_update("reinforce", model)
    dynamics, m_d = one_update("dynamics", model)
    # (grad mode may pick other float kernels: equal up to rounding)
    assert m_r["return"] == pytest.approx(m_d["return"], rel=1e-5)
    assert m_r["critic_loss"] == pytest.approx(m_d["critic_loss"], rel=1e-5)
    torch.testing.assert_close(reinforce.critic.net[0].weight, dynamics.critic.net[0].weight,
                               rtol=0, atol=1e-6)
    assert (reinforce.actor.net[0].weight - dynamics.actor.net[0].weight).abs().max() > 1e-5
    for mix, ref in ((0.0, reinforce), (1.0, dynamics)):
        mixed, _ = one_update("both", model, mix)
        for p, q in zip(mixed.actor.parameters(), ref.actor.parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def test_auto_picks_by_capability_and_config_errors_name_the_key():
    ac = ActorCritic(CFG, 16 + 16, ActionSpec(n=3))
    assert CFG.gradient == "auto" and ac.gradient_mode(tiny_rssm()) == "dynamics"
    diffusion = tiny_world_model()
    on_diffusion = ActorCritic(CFG, diffusion.feature_dim, diffusion.action_spec)
    assert on_diffusion.gradient_mode(diffusion) == "reinforce"
    frames, actions = random_context(2, seed=0)
    forced = ActorCritic(replace(CFG, gradient="dynamics"), diffusion.feature_dim, diffusion.action_spec)
    with pytest.raises(ValueError, match="needs a model with imagine_step"):
        forced.update(diffusion, diffusion.init(frames, actions), torch.Generator().manual_seed(0))
    with pytest.raises(FieldError, match="gradient: must be one of"):
        ActorCriticConfig(gradient="backprop")
    with pytest.raises(FieldError, match="gradient_mix"):
        ActorCriticConfig(gradient_mix=1.5)
