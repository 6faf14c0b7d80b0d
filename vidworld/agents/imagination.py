"""Imagined rollouts of a policy inside any world model of the protocol (batched over starts, looped in time).

    traj = imagine(model, start_state, actor, horizon=15, generator=g)

starts from B model states (e.g. `model.init` of B real contexts from the replay), and alternates: read
`model.features(state)`, sample an action from the actor, `model.step`. Nothing here decodes pixels.
One `generator` draws both the actor's samples and the model's noise, so a seed fixes the whole rollout.

Gradients: `imagine` does not change the autograd mode. Under `torch.no_grad()` it records no graph (the
REINFORCE path; the diffusion model's `step` is not differentiable anyway). With grad enabled and
`reparameterize=True` the actions carry the actor's gradient into the dynamics, and a differentiable model
returns rewards, continues and features that carry it back: dynamics backprop (Dreamer; DreamerV3's
`actor_grad_cont: backprop`). Continuous actions are reparameterised samples passed to `model.step` (PointMass
in the tests). Discrete actions cannot go through `step` (ids have no gradient): they go as straight-through
one-hot samples, onehot(a) + p - sg(p) (DreamerV2), to a model that declares the `DifferentiableDynamics`
capability below (the RSSM's `imagine_step`). The actor always reads detached features (DreamerV3
`policy(sg(state))`): the gradient reaches earlier actions through the dynamics only. Which of the two the
actor-critic uses is its `gradient` setting (actor_critic.py; "auto": dynamics for DifferentiableDynamics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from vidworld.agents.networks import Actor
from vidworld.protocol import StepOut, WorldModel, state_batch_size


@runtime_checkable
class DifferentiableDynamics(Protocol):
    """A model that can step on float actions [B, n] (one-hot or straight-through samples of the n discrete
    actions) keeping the autograd graph, so gradients reach the actions (the RSSM). Belongs in
    `vidworld.protocol` beside the other capabilities; declared here until it moves there."""

    def imagine_step(self, state: Any, action_probs: Tensor, generator: torch.Generator | None = None
                     ) -> tuple[Any, StepOut]: ...


@dataclass(frozen=True)
class Trajectory:
    """One imagined rollout of horizon H from B starts; every field is time-major [H+1, B, ...].

    Index t is the imagined state s_t (s_0 = the start). Alignment as `returns.lambda_returns` documents:
    features [H+1, B, F]  model.features(s_t)
    actions  [H+1, B] long (discrete) or [H+1, B, d] float (continuous, the unclipped policy sample):
             a_t sampled at s_t; a_H is sampled but never executed (kept so every field has H+1 rows)
    rewards  [H+1, B]  reward of the transition s_{t-1} -> s_t; rewards[0] = 0
    continues [H+1, B] 1 - termination_prob of that transition; continues[0] = 1 (starts are live states)
    log_probs [H+1, B] log pi(a_t | s_t) at sampling time
    entropies [H+1, B] entropy of pi(. | s_t)
    """

    features: Tensor
    actions: Tensor
    rewards: Tensor
    continues: Tensor
    log_probs: Tensor
    entropies: Tensor

    @property
    def horizon(self) -> int:
        return self.features.shape[0] - 1

    def float(self) -> Trajectory:
        """Every float field in float32 (a rollout imagined under bf16 autocast)."""
        return Trajectory(**{k: v.float() if v.is_floating_point() else v for k, v in self.__dict__.items()})

    def alive(self) -> Tensor:
        """[H+1, B] probability that s_t is reached before any termination: prod_{k<=t} continues[k]."""
        return torch.cumprod(self.continues, 0)

    def imagined_return(self) -> Tensor:
        """[B] undiscounted reward collected before termination: sum_t alive[t] * rewards[t] (diagnostic)."""
        return (self.alive() * self.rewards).sum(0)


def imagine(
    model: WorldModel,
    start_state,
    actor: Actor,
    horizon: int,
    generator: torch.Generator | None = None,
    reparameterize: bool = False,
) -> Trajectory:
    """Roll `actor` out for `horizon` model steps from every row of `start_state` -> Trajectory [H+1, B, ...].

    `reparameterize` (dynamics backprop): continuous actions are mean + std * eps with the gradient kept;
    discrete ones go to `model.imagine_step` as straight-through one-hots (the model must declare
    DifferentiableDynamics). Otherwise samples are detached and every step is `model.step`.
    """
    if horizon < 1:
        raise ValueError(f"imagination horizon must be >= 1, got {horizon}")
    straight_through = reparameterize and actor.discrete
    if straight_through and not isinstance(model, DifferentiableDynamics):
        raise ValueError(
            "dynamics backprop with discrete actions needs a model with imagine_step(state, action_probs "
            "[B, n], generator) (the DifferentiableDynamics capability, e.g. the RSSM); "
            f"{type(model).__name__} has none, and action ids given to model.step carry no gradient. "
            "Use REINFORCE instead"
        )
    B, F = state_batch_size(start_state), actor.net[0].in_features
    device = next(actor.parameters()).device
    state = start_state
    feats, acts, rews, conts, logps, ents = [], [], [], [], [], []
    reward = torch.zeros(B, device=device)
    cont = torch.ones(B, device=device)
    for t in range(horizon + 1):
        f = model.features(state).to(device=device, dtype=torch.float32)
        if f.shape != (B, F):
            raise ValueError(f"model.features returned {tuple(f.shape)}, the actor expects [B={B}, F={F}]")
        policy = actor(f.detach())
        a = policy.sample(generator)
        if not reparameterize:
            a = a.detach()
        feats.append(f)
        acts.append(a)
        rews.append(reward)
        conts.append(cont)
        logps.append(policy.log_prob(a.detach()))
        ents.append(policy.entropy())
        if t == horizon:
            break
        if straight_through:
            probs = policy.probs
            onehot = torch.nn.functional.one_hot(a, probs.shape[-1]).to(probs.dtype)
            straight = onehot + probs - probs.detach()  # value: the one-hot; gradient: d probs
            state, out = model.imagine_step(state, straight.to(model.device), generator)
        else:
            state, out = model.step(state, actor.to_model(a).to(model.device), generator=generator)
        reward = out.reward.to(device=device, dtype=torch.float32)
        cont = 1.0 - out.termination_prob.to(device=device, dtype=torch.float32)
    return Trajectory(
        features=torch.stack(feats),
        actions=torch.stack(acts),
        rewards=torch.stack(rews),
        continues=torch.stack(conts),
        log_probs=torch.stack(logps),
        entropies=torch.stack(ents),
    )
