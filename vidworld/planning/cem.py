"""Sampling-based model-predictive control over the world-model protocol: CEM and MPPI.

The planner never touches an environment: it branches the world-model state with `repeat_state` and rolls
every candidate action sequence forward in ONE batched `model.step` call per horizon step, so the same code
plans in a latent video diffusion model, an RSSM or a MuZero dynamics net.

* CEM (Rubinstein 1999; as used for MPC by PETS/PlaNet): sample a population from a per-step action
  distribution, keep the `elites` best, refit the distribution to them, repeat `iterations` times.
* MPPI (Williams et al. 2017, "Information theoretic MPC"): refit to ALL samples weighted by
  softmax(return / temperature) instead of a hard elite cut; smoother when returns are noisy.

Discrete actions use a categorical distribution per horizon step, probs [H, n]; continuous actions
(ActionSpec.kind != "discrete") use a diagonal Gaussian, mean/std [H, *shape], samples clipped to
[low, high]. Both keep the distribution's mode/mean in the population (iCEM, Pinneri et al. 2020), so the
warm-started previous plan is always re-evaluated (with a deterministic model a replan never scores worse
than it), and both warm start from the previous plan shifted by one step (the new last step uninformed).
The returned plan is the best-scoring SAMPLED sequence over all iterations, not the distribution's mean:
it is a sequence the model actually imagined, so its return and latents are real predictions.

Objective of a candidate a_{0:H}, rolled out from the root state (the batch-1 state `plan` receives):

    G = sum_t discount^t * alive_t * reward_t  +  discount^H * alive_H * value_fn(state_H)
    alive_0 = 1,  alive_{t+1} = alive_t * (1 - termination_prob_t)

The reward of the transition that terminates still counts (gymnasium's CartPole pays it too); the soft
`alive` product lets a model's termination probability discount everything after a likely episode end.

Uncertainty-aware planning: with `uncertainty_samples = M > 1` every candidate is rolled out M times with
different generator noise (batch P * M in one call; a diffusion model draws different samples for each row),
and the planner maximises  mean_M(G) - uncertainty_penalty * std_M(G).  The spread of the model's own
samples measures how unsure it is about that future, so a positive penalty steers plans away from
branches whose outcome the model cannot predict even when their mean return is the same (risk-averse MPC,
in the spirit of PETS' trajectory sampling, Chua et al. 2018). The samples must really differ: a 1-step
diffusion sampler returns the posterior mean from pure noise, so its M "samples" are nearly equal and the
penalty measures nothing (loading a diffusion model with `sampler_steps=1` warns); with the 2-step default, 16 candidates x 2 samples with
penalty 0.5 beat 32 candidates x 1 sample on the demo's CartPole model (136.0 vs 111.8 mean return).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from vidworld.config import check_field
from vidworld.protocol import ActionSpec, repeat_state, state_batch_size

ValueFn = Callable[[Tensor], Tensor]  # latent [N, ...] -> value [N]


@dataclass
class CEMConfig:
    """Planner settings (one config dataclass per component; YAML supplies values).

    horizon: H, imagined steps per candidate. population: P candidates per iteration. elites: how many
    best candidates CEM refits to. iterations: refits per decision. mode: "cem" or "mppi".
    temperature: MPPI softmax temperature, in units of return. smoothing: weight of the OLD distribution
    when refitting (0 = replace it). discount: per-step discount. warm_start: start each plan from the
    previous one shifted by a step. uncertainty_samples: M rollouts per candidate with different noise.
    uncertainty_penalty: objective = mean - penalty * std over those M. min_prob: floor on every
    categorical probability (exploration never dies); for continuous actions the std floor is
    min_prob * (high - low).
    """

    horizon: int = 12
    population: int = 64
    elites: int = 8
    iterations: int = 3
    mode: Literal["cem", "mppi"] = "cem"
    temperature: float = 1.0
    smoothing: float = 0.1
    discount: float = 0.99
    warm_start: bool = True
    uncertainty_samples: int = 1
    uncertainty_penalty: float = 0.0
    min_prob: float = 0.01

    def __post_init__(self) -> None:
        # check_field also refuses NaN/inf: a NaN penalty made every objective NaN and the "plan" arbitrary
        check_field(self, "mode", one_of=("cem", "mppi"))
        for name in ("horizon", "population", "elites", "iterations", "uncertainty_samples"):
            check_field(self, name, ge=1)
        check_field(self, "elites", le=self.population, note="the best of `population` candidates")
        check_field(self, "smoothing", ge=0, lt=1)
        check_field(self, "temperature", gt=0)
        check_field(self, "discount", ge=0, le=1)
        check_field(self, "uncertainty_penalty", ge=0)
        check_field(self, "min_prob", ge=0, lt=1)


@dataclass(frozen=True)
class PlanResult:
    """One planning decision.

    action: the action to execute now: int (discrete) or float tensor [*shape] (continuous).
    plan: [H] long (discrete) or [H, *shape] float, the best action sequence found.
    expected_return: mean over the M noise samples of the best sequence's return G.
    return_std: std of G over the M samples (0.0 when uncertainty_samples == 1).
    objective: expected_return - uncertainty_penalty * return_std, what the planner maximised.
    latents: [H, ...] the model's imagined latents along the best sequence (first noise sample), so a
        caller can `model.decode(latents)` to watch the future the planner believes in.
    """

    action: int | Tensor
    plan: Tensor
    expected_return: float
    return_std: float
    objective: float
    latents: Tensor


class CEMPlanner:
    """CEM / MPPI model-predictive control over any world model implementing the protocol.

    `plan(state, generator)` takes a batch-1 model state (e.g. `model.init(context)` of the real history)
    and returns a PlanResult; call it every env step (receding horizon) and `reset()` between episodes.
    """

    def __init__(self, model, cfg: CEMConfig | None = None, value_fn: ValueFn | None = None):
        self.model = model
        self.cfg = cfg or CEMConfig()
        self.value_fn = value_fn
        self.spec: ActionSpec = model.action_spec
        self.discrete = self.spec.kind == "discrete"
        if self.discrete and self.spec.n < 1:
            raise ValueError(f"discrete ActionSpec needs n >= 1 actions, got n={self.spec.n}")
        if self.discrete and self.cfg.min_prob * self.spec.n >= 1.0:
            raise ValueError(f"CEMConfig.min_prob={self.cfg.min_prob} is too large for {self.spec.n} actions")
        if not self.discrete and not self.spec.high > self.spec.low:
            raise ValueError(
                f"continuous ActionSpec needs high > low, got [{self.spec.low}, {self.spec.high}]"
            )
        self._last: tuple[Tensor, ...] | None = None  # final distribution of the previous plan

    # ----- distribution ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the previous plan (call at episode start)."""
        self._last = None

    def _uninformed(self, steps: int) -> tuple[Tensor, ...]:
        if self.discrete:
            return (torch.full((steps, self.spec.n), 1.0 / self.spec.n),)
        mid, half = (self.spec.high + self.spec.low) / 2, (self.spec.high - self.spec.low) / 2
        return torch.full((steps, *self.spec.shape), mid), torch.full((steps, *self.spec.shape), half)

    def prior(self) -> tuple[Tensor, ...]:
        """The distribution the next `plan` starts from: (probs [H, n],) or (mean, std) [H, *shape].

        Warm start (MPC's receding horizon): the previous final distribution shifted one step forward,
        the freed last step uninformed (uniform / centred with full-range std).
        """
        return self.warm_prior(self._last)

    def warm_prior(self, last: tuple[Tensor, ...] | None) -> tuple[Tensor, ...]:
        """`prior()` for a root whose previous final distribution was `last` (None: an episode start)."""
        H = self.cfg.horizon
        if last is None or not self.cfg.warm_start:
            return self._uninformed(H)
        fresh = self._uninformed(1)
        return tuple(torch.cat([old[1:], new]) for old, new in zip(last, fresh))

    @property
    def distribution(self) -> tuple[Tensor, ...] | None:
        """Final distribution of the last `plan` call (None after reset)."""
        return self._last

    # Everything below plans E independent roots at once: distributions carry a leading root dim ([E, H, n] or
    # [E, H, *shape]), populations are [E, P, H, ...], objectives [E, P]. `plan` is the E = 1 case and draws
    # exactly the random numbers it drew before roots were batched.
    def _sample(self, dist: tuple[Tensor, ...], generator: torch.Generator | None) -> Tensor:
        """Population [E, P, H] long or [E, P, H, *shape] float; row 0 of each root is its mode/mean."""
        P = self.cfg.population
        # Draw on the generator's device (a CUDA generator for a GPU model), plan on the CPU.
        dev = generator.device if generator is not None else torch.device("cpu")
        if self.discrete:
            (probs,) = dist
            E, H, n = probs.shape
            draws = torch.multinomial(probs.reshape(E * H, n).to(dev), P, replacement=True, generator=generator)
            acts = draws.cpu().view(E, H, P).transpose(1, 2).contiguous()  # [E, P, H]
            acts[:, 0] = probs.argmax(-1)
            return acts
        mean, std = dist
        noise = torch.randn((mean.shape[0], P, *mean.shape[1:]), generator=generator, device=dev).cpu()
        noise[:, 0] = 0.0
        return (mean[:, None] + std[:, None] * noise).clamp(self.spec.low, self.spec.high)

    def _refit(self, dist: tuple[Tensor, ...], acts: Tensor, objective: Tensor) -> tuple[Tensor, ...]:
        """New distributions from the scored populations (CEM elites or MPPI weights), smoothed and floored."""
        cfg = self.cfg
        if cfg.mode == "cem":
            weights = torch.zeros_like(objective).scatter_(1, objective.topk(cfg.elites, dim=1).indices,
                                                           1.0 / cfg.elites)
        else:  # MPPI: exponentiated returns; subtracting the max only guards exp from overflow
            weights = ((objective - objective.amax(1, keepdim=True)) / cfg.temperature).exp()
            weights = weights / weights.sum(1, keepdim=True)
        a = cfg.smoothing
        if self.discrete:
            (probs,) = dist
            onehot = torch.nn.functional.one_hot(acts, self.spec.n).float()  # [E, P, H, n]
            new = torch.einsum("ep,ephn->ehn", weights, onehot)
            new = (1 - a) * new + a * probs
            # Mixing with the uniform distribution floors every prob at exactly min_prob and keeps sum 1.
            return (new * (1 - self.spec.n * cfg.min_prob) + cfg.min_prob,)
        mean, std = dist
        w = weights.view(*weights.shape, *([1] * (acts.dim() - 2)))
        new_mean = (w * acts).sum(1)
        new_std = ((w * (acts - new_mean[:, None]) ** 2).sum(1)).sqrt()
        floor = cfg.min_prob * (self.spec.high - self.spec.low)
        return (1 - a) * new_mean + a * mean, ((1 - a) * new_std + a * std).clamp_min(floor)

    # ----- rollouts ----------------------------------------------------------------------------------
    def _rollout(self, state, acts: Tensor, generator: torch.Generator | None):
        """Roll E roots' candidates out in the model: batch = roots x candidates x noise samples, one `step`
        per horizon step. state: batch-E model state; acts: [E, P, H] long or [E, P, H, *shape] float.
        Returns (returns [E, P, M] on the CPU, latents: list of H tensors [E * P * M, ...] on the model's
        device), rows ordered (e * P + p) * M + m."""
        E, P, H, M = acts.shape[0], acts.shape[1], acts.shape[2], self.cfg.uncertainty_samples
        if state_batch_size(state) != E:
            raise ValueError(f"{E} populations for a batch-{state_batch_size(state)} root state")
        s = repeat_state(state, P * M)
        rows = acts.reshape(E * P, *acts.shape[2:]).repeat_interleave(M, dim=0)  # a candidate's M copies adjacent
        ret = torch.zeros(E * P * M)
        alive = torch.ones(E * P * M)
        disc = 1.0
        latents = []
        for t in range(H):
            s, out = self.model.step(s, rows[:, t], generator=generator)
            ret = ret + disc * alive * out.reward.detach().float().cpu()
            alive = alive * (1.0 - out.termination_prob.detach().float().cpu())
            disc *= self.cfg.discount
            latents.append(out.latent)
        if self.value_fn is not None:  # bootstrap beyond the horizon (as TD-MPC / MuZero's n-step target)
            ret = ret + disc * alive * self.value_fn(s).detach().float().cpu().reshape(E * P * M)
        return ret.view(E, P, M), latents

    def evaluate(self, state, acts: Tensor, generator: torch.Generator | None = None):
        """Roll one root's candidates out in the model; batch = candidates x noise samples.

        state: batch-1 model state. acts: [P, H] long or [P, H, *shape] float.
        Returns (returns [P, M], latents: list of H tensors [P * M, ...]) with rows ordered p * M + m.
        Returns live on the CPU; latents stay on the model's device.
        """
        if state_batch_size(state) != 1:
            raise ValueError(f"plan() takes a batch-1 root state, got batch {state_batch_size(state)}")
        returns, latents = self._rollout(state, acts[None], generator)
        return returns[0], latents

    def _search(self, state, dist: tuple[Tensor, ...], generator: torch.Generator | None, keep_latents: bool):
        """`iterations` rounds of sample / roll out / refit for E roots at once. Returns the best sampled
        sequence per root over all rounds, (objective [E], acts [E, H, ...], mean [E], std [E],
        latents [E, H, ...] or None), and the final distributions."""
        cfg = self.cfg
        M = cfg.uncertainty_samples
        best = None
        for _ in range(cfg.iterations):
            acts = self._sample(dist, generator)
            returns, latents = self._rollout(state, acts, generator)
            mean = returns.mean(2)
            std = returns.std(2) if M > 1 else torch.zeros_like(mean)
            objective = mean - cfg.uncertainty_penalty * std
            i = objective.argmax(1)  # [E]
            E, P = objective.shape
            roots = torch.arange(E)
            cand = (objective[roots, i], acts[roots, i], mean[roots, i], std[roots, i])
            lat = None
            if keep_latents:  # the first noise sample of each root's best candidate
                rows = ((roots * P + i) * M).to(latents[0].device)
                lat = torch.stack([step[rows] for step in latents], 1).cpu()  # [E, H, ...]
            new = (*cand, lat)
            if best is None:
                best = new
            else:  # a root keeps its earlier best unless this round found a strictly better sequence
                better = cand[0] > best[0]
                best = tuple(n if n is None else torch.where(better.view(-1, *([1] * (n.dim() - 1))), n, o)
                             for n, o in zip(new, best))
            dist = self._refit(dist, acts, objective)
        return best, dist

    def plan(self, state, generator: torch.Generator | None = None) -> PlanResult:
        """Choose an action for the batch-1 `state`; see the module docstring for the objective."""
        if state_batch_size(state) != 1:
            raise ValueError(f"plan() takes a batch-1 root state, got batch {state_batch_size(state)}")
        (obj, plans, means, stds, lat), dist = self._search(state, tuple(t[None] for t in self.prior()),
                                                           generator, keep_latents=True)
        self._last = tuple(t[0] for t in dist)
        plan = plans[0]
        action = int(plan[0]) if self.discrete else plan[0].clone()
        return PlanResult(
            action=action,
            plan=plan.clone(),
            expected_return=float(means[0]),
            return_std=float(stds[0]),
            objective=float(obj[0]),
            latents=lat[0],
        )

    def plan_batch(self, state, last: list[tuple[Tensor, ...] | None], generator: torch.Generator | None = None):
        """Plan for E independent roots in one search (real episodes stepped in lockstep): state is a batch-E
        model state, last[e] root e's previous final distribution (None at its episode start; the planner's
        own `reset`/warm-start memory is not used). Returns (actions: list of E ints or [*shape] tensors, the
        final distributions: list of E tuples, to pass back as `last` next step)."""
        priors = [self.warm_prior(d) for d in last]
        dist = tuple(torch.stack(parts) for parts in zip(*priors))
        (_, plans, _, _, _), final = self._search(state, dist, generator, keep_latents=False)
        actions = [int(p[0]) if self.discrete else p[0].clone() for p in plans]
        return actions, [tuple(t[e] for t in final) for e in range(len(last))]
