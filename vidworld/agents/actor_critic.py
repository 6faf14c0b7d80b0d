"""Actor-critic trained purely in imagination (DreamerV3, Hafner et al. 2023; DIAMOND, Alonso et al. 2024).

    agent = ActorCritic(ActorCriticConfig(), model.feature_dim, model.action_spec)
    metrics = agent.update(model, model.init(frames, actions), generator=g)   # one gradient step each
    action = agent.act(model.features(state), greedy=False, generator=g)      # acting, batch 1 or B

Everything reads `model.features(state)` only: no pixels are decoded, and any world model of the protocol
(diffusion, RSSM, copy-last, the toy models of the tests) can be imagined in.

What follows DreamerV3 (dreamerv3/agent.py `imag_loss`, configs.yaml), and where we differ:
* returns: lambda-returns (lambda 0.95) over H = 15 imagined steps, bootstrapped by the critic; the discount
  is gamma * (1 - termination_prob) per step (returns.py). DreamerV3 trains its continue head on
  discounted targets and uses gamma = 1 here (`contdisc`); our termination heads predict plain probabilities,
  so gamma (0.985, DIAMOND's) is applied on top; set discount = 1.0 to use the termination head alone;
* critic: symlog two-hot over 255 bins (twohot.py), trained on the lambda-returns of the *current* critic
  (`slowtar: False`) plus a cross-entropy towards the decoded prediction of a slow EMA copy (decay 0.98,
  `slowreg` 1.0), which keeps the critic from chasing its own moving targets;
* actor: advantage (R_t - v_t) / max(1, P95 - P5) with EMA percentiles (returns.PercentileNormalizer),
  maximised by the estimator `gradient` picks (dreamerv3-torch's `imag_gradient`, models.py
  `_compute_actor_loss`; DreamerV3's `actor_grad_disc` / `actor_grad_cont`):
  - "reinforce": -log pi(a_t|s_t) * sg(adv). The only choice for the diffusion model (its `step` runs
    under no_grad), and what DreamerV3 (`actor_grad_disc: reinforce`) and dreamerv3-torch's discrete
    suites (atari100k, crafter, minecraft, memorymaze: `imag_gradient: reinforce`) use for discrete actions;
  - "dynamics": -adv itself, differentiated through the imagined rollout (Dreamer v1; DreamerV3's
    `actor_grad_cont: backprop`, dreamerv3-torch's default `imag_gradient: dynamics`): continuous actions
    as reparameterised samples through `model.step`, discrete ones as straight-through one-hots through
    `imagine_step` (imagination.DifferentiableDynamics: the RSSM). The world model is not updated by it;
  - "both": gradient_mix * adv + (1 - gradient_mix) * the REINFORCE term (dreamerv3-torch's "both" with
    `imag_gradient_mix`; it mixes the raw return, we mix the normalised advantage of both terms);
  - "auto" (default): "dynamics" when the model declares differentiable imagination
    (DifferentiableDynamics), else "reinforce". So the diffusion model always gets REINFORCE.
  entropy bonus eta * H(pi);
* loss weights: each state's losses are weighted by the probability it is reached before a predicted
  termination (cumprod of continues; DreamerV3 `weight`, without its extra gamma^t);
* optimiser: Adam with global-norm clipping (DreamerV3 v1 / DIAMOND), not DreamerV3's LaProp + AGC.
DIAMOND's own actor-critic uses the same returns (gamma 0.985, lambda 0.95, H 15) with an MSE critic, raw
advantages and sign-clipped rewards; the two-hot critic and the percentile scale make the same settings work
whatever the reward scale of the env.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vidworld.agents.imagination import DifferentiableDynamics, Trajectory, imagine
from vidworld.agents.networks import Actor, Critic
from vidworld.agents.returns import PercentileNormalizer, lambda_returns
from vidworld.agents.twohot import TwoHot
from vidworld.config import FieldError, check_field
from vidworld.precision import PRECISIONS, inference_autocast
from vidworld.protocol import ActionSpec, WorldModel


GRADIENTS = ("auto", "reinforce", "dynamics", "both")


@dataclass
class ActorCriticConfig:
    horizon: int = 15  # imagined steps per start (DreamerV3 imag_length, DIAMOND)
    discount: float = 0.985  # gamma on top of the predicted continue probability (DIAMOND); 1.0 = head only
    lam: float = 0.95  # lambda of the lambda-returns
    entropy_coef: float = 3e-4  # eta (DreamerV3 actent), relative to advantages of scale ~1
    actor_lr: float = 1e-4  # DIAMOND's 1e-4 (DreamerV3 uses 4e-5 with bigger batches and nets)
    critic_lr: float = 1e-4
    adam_eps: float = 1e-5
    grad_clip: float = 100.0  # max global grad norm per network (DreamerV3 v1, DIAMOND)
    hidden: int = 256  # MLP width (DreamerV3 "size12m" uses 256)
    layers: int = 2  # Linear-LayerNorm-SiLU blocks before the output layer
    unimix: float = 0.01  # uniform mixed into the categorical policy
    bins: int = 255  # two-hot bins of the critic, uniform on [-20, 20] in symlog space
    slow_critic_decay: float = 0.98  # slow <- decay * slow + (1 - decay) * critic, every update
    slow_critic_reg: float = 1.0  # weight of the critic's loss towards the slow critic's prediction
    slow_target: bool = False  # bootstrap returns with the slow critic (DreamerV3 default False)
    return_percentiles: tuple[float, float] = (5.0, 95.0)
    return_decay: float = 0.99  # EMA decay of the return percentiles
    return_limit: float = 1.0  # the scale is max(limit, P_high - P_low)
    gradient: str = "auto"  # actor gradient: reinforce | dynamics | both | auto (see the module docstring)
    gradient_mix: float = 0.0  # "both": weight of the dynamics term (dreamerv3-torch imag_gradient_mix)
    precision: str = "auto"  # imagination arithmetic (the world model's steps): auto = bf16 where native (1.4x
    #                          on these CPUs, vidworld/precision.py); actor, critic and losses stay fp32

    def __post_init__(self) -> None:
        check_field(self, "horizon", ge=1)
        check_field(self, "discount", gt=0.0, le=1.0)
        check_field(self, "lam", ge=0.0, le=1.0)
        check_field(self, "entropy_coef", ge=0.0)
        for name in ("actor_lr", "critic_lr", "adam_eps", "grad_clip", "return_limit"):
            check_field(self, name, gt=0.0)
        for name in ("hidden", "layers"):
            check_field(self, name, ge=1)
        check_field(self, "unimix", ge=0.0, lt=1.0)
        check_field(self, "bins", ge=2)
        check_field(self, "slow_critic_decay", ge=0.0, lt=1.0)
        check_field(self, "slow_critic_reg", ge=0.0)
        check_field(self, "return_decay", ge=0.0, lt=1.0)
        check_field(self, "gradient", one_of=GRADIENTS)
        check_field(self, "gradient_mix", ge=0.0, le=1.0)
        check_field(self, "precision", one_of=PRECISIONS)
        lo, hi = self.return_percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise FieldError("return_percentiles", f"must be [low, high] with 0 <= low < high <= 100, got "
                             f"{list(self.return_percentiles)}", type(self).__name__)


def _apply(opt: torch.optim.Optimizer, params: list[nn.Parameter], loss: Tensor, clip: float) -> Tensor:
    """One optimiser step on `params` only. autograd.grad (not backward) so that no gradient lands on the
    world model or the other network, whatever the loss's graph touches. Returns the pre-clip grad norm."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    for p, g in zip(params, grads):
        p.grad = g if g is not None else torch.zeros_like(p)
    norm = nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    return norm


class ActorCritic(nn.Module):
    """Actor, critic and slow critic over features [.., feature_dim], with their optimisers and the return
    normaliser. `state_dict()` holds all of it (for exact resume); see `update` for the algorithm."""

    def __init__(self, config: ActorCriticConfig, feature_dim: int, action_spec: ActionSpec):
        super().__init__()
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {feature_dim}")
        self.config = config
        self.feature_dim = feature_dim
        self.action_spec = action_spec
        c = config
        self.actor = Actor(feature_dim, action_spec, c.hidden, c.layers, c.unimix)
        self.critic = Critic(feature_dim, c.hidden, c.layers, TwoHot(c.bins))
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr, eps=c.adam_eps)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=c.critic_lr, eps=c.adam_eps)
        self.return_norm = PercentileNormalizer(*c.return_percentiles, decay=c.return_decay,
                                                limit=c.return_limit)
        self.updates = 0

    @property
    def device(self) -> torch.device:
        return self.actor.net[0].weight.device

    # --- learning -----------------------------------------------------------------------------------------
    def gradient_mode(self, model: WorldModel) -> str:
        """The actor's gradient estimator for `model`: config.gradient, with "auto" resolved to "dynamics"
        for a model declaring differentiable imagination (DifferentiableDynamics), else "reinforce"."""
        if self.config.gradient != "auto":
            return self.config.gradient
        return "dynamics" if isinstance(model, DifferentiableDynamics) else "reinforce"

    def update(
        self, model: WorldModel, start_state, generator: torch.Generator | None = None
    ) -> dict[str, float]:
        """One actor and one critic step on a rollout imagined from every row of `start_state` (B starts).

        Returns scalar diagnostics: actor_loss, critic_loss, entropy, return (mean lambda-return), value,
        return_scale, imagined_return (mean undiscounted reward before termination), grad norms.
        """
        c = self.config
        mode = self.gradient_mode(model)
        through = mode != "reinforce"  # the actor learns (also) through the dynamics

        # 1. Imagine H steps (at c.precision). No graph unless the actor learns through the dynamics.
        with torch.set_grad_enabled(through), inference_autocast(model.device, c.precision):
            traj: Trajectory = imagine(model, start_state, self.actor, c.horizon, generator,
                                       reparameterize=through)
        traj = traj.float()
        if through and not traj.rewards[1:].requires_grad:
            raise ValueError(
                f"agent.gradient={mode!r} but model.step returned rewards without a gradient: this model is "
                "not differentiable (e.g. the diffusion model steps under torch.no_grad); use reinforce"
            )

        # 2. Values of every imagined state and lambda-returns R_0..R_{H-1} (returns.py has the convention).
        #    Under REINFORCE nothing here needs a graph; under backprop the returns carry the dynamics' one.
        with torch.set_grad_enabled(through):
            values = self.critic.value(traj.features)  # [H+1, B]
            boot = self.slow_critic.value(traj.features) if c.slow_target else values
            returns = lambda_returns(traj.rewards, traj.continues, boot, c.discount, c.lam)  # [H, B]
        weights = traj.alive()[:-1].detach()  # [H, B]: P(s_t reached before a termination)

        # 3. Advantages scaled by the EMA 5th-95th percentile range of the returns (batch folded in first).
        self.return_norm.update(returns)
        scale = self.return_norm.scale()
        advantages = (returns - values[:-1]) / scale  # [H, B]

        # 4. Actor: policy gradient and/or the advantage differentiated through the model; entropy bonus.
        policy = self.actor(traj.features[:-1].detach())
        entropy = policy.entropy()  # [H, B]
        if mode == "dynamics":
            objective = advantages
        else:
            objective = policy.log_prob(traj.actions[:-1]) * advantages.detach()
            if mode == "both":
                objective = c.gradient_mix * advantages + (1.0 - c.gradient_mix) * objective
        actor_loss = -(weights * (objective + c.entropy_coef * entropy)).mean()

        # 5. Critic: two-hot cross-entropy towards sg(R_t), plus towards the slow critic's prediction.
        logits = self.critic(traj.features[:-1].detach())  # [H, B, bins]
        with torch.no_grad():
            slow_values = self.slow_critic.value(traj.features[:-1].detach())
        twohot = self.critic.twohot
        critic_loss = (weights * (twohot.loss(logits, returns.detach())
                                  + c.slow_critic_reg * twohot.loss(logits, slow_values))).mean()

        # 6. Optimiser steps, each on its own network's parameters only.
        actor_norm = _apply(self.actor_opt, list(self.actor.parameters()), actor_loss, c.grad_clip)
        critic_norm = _apply(self.critic_opt, list(self.critic.parameters()), critic_loss, c.grad_clip)

        # 7. Slow critic: EMA of the critic's weights.
        with torch.no_grad():
            for slow, fast in zip(self.slow_critic.parameters(), self.critic.parameters()):
                slow.lerp_(fast, 1.0 - c.slow_critic_decay)
        self.updates += 1

        diagnostics = {
            "actor_loss": actor_loss,
            "critic_loss": critic_loss,
            "entropy": entropy.mean(),
            "return": returns.mean(),
            "value": values[:-1].mean(),
            "imagined_return": traj.imagined_return().mean(),
            "actor_grad_norm": actor_norm,
            "critic_grad_norm": critic_norm,
        }
        return {"return_scale": scale, **{k: v.detach().item() for k, v in diagnostics.items()}}

    # --- acting -------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def act(self, features: Tensor, greedy: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """features [B, F] (or [F]) -> actions for `model.step`: long [B] ids, or float [B, *shape] in
        [low, high]. greedy: the most likely action (or the mean); else a sample drawn from `generator`."""
        single = features.dim() == 1
        f = features[None] if single else features
        if f.shape[-1] != self.feature_dim:
            raise ValueError(f"features must be [B, {self.feature_dim}], got {tuple(features.shape)}")
        policy = self.actor(f.to(self.device, torch.float32))
        a = self.actor.to_model(policy.mode() if greedy else policy.sample(generator))
        return a[0] if single else a

    @torch.no_grad()
    def value(self, features: Tensor) -> Tensor:
        """The critic's value of features [B, F] -> [B]."""
        return self.critic.value(features.to(self.device, torch.float32))

    # --- exact resume -------------------------------------------------------------------------------------
    def state_dict(self, *args, **kwargs) -> dict:
        """Everything `update` changes: networks (incl. slow critic), both Adam states, the normaliser's EMAs
        and the update count; plus the config, checked on load. (Called as a submodule of another module,
        with destination/prefix, it falls back to nn.Module's parameter dict.)"""
        if args or kwargs:
            return super().state_dict(*args, **kwargs)
        return {
            "nets": super().state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "return_norm": self.return_norm.state_dict(),
            "updates": self.updates,
            "config": dataclasses.asdict(self.config),
        }

    def load_state_dict(self, state: dict, strict: bool = True, assign: bool = False):
        if "nets" not in state:  # a plain parameter dict (nested use)
            return super().load_state_dict(state, strict=strict, assign=assign)
        saved = state["config"]
        mine = dataclasses.asdict(self.config)
        shape_keys = ("hidden", "layers", "bins")
        diff = {k: (saved.get(k), mine[k]) for k in shape_keys if saved.get(k) != mine[k]}
        if diff:
            raise ValueError(f"saved actor-critic has other network shapes (saved, this one): {diff}")
        super().load_state_dict(state["nets"], strict=strict)
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.return_norm.load_state_dict(state["return_norm"])
        self.updates = int(state["updates"])
