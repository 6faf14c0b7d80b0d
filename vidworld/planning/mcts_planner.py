"""MCTS over a world model: the adapter from the protocol to `mcts.search`, and a planner with the same
`reset()` / `plan(state, generator) -> PlanResult` interface as `CEMPlanner` (so `MPCAgent` runs either).

`mcts.py` is the model-agnostic search (mctx style); this module is the only place that knows about
world-model states, rewards and termination probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from vidworld.planning.cem import PlanResult
from vidworld.planning.mcts import UNVISITED, RecurrentOutput, RootOutput, SearchOutput, search
from vidworld.protocol import state_batch_size


def mcts_policy(
    model,
    state,
    num_simulations: int,
    *,
    value_fn: Callable[[Any], Tensor] | None = None,
    prior_fn: Callable[[Any], Tensor] | None = None,
    discount: float = 0.997,
    generator: torch.Generator | None = None,
    **search_kwargs,
) -> SearchOutput:
    """MCTS over a protocol world model from a batch-B `state` (B independent roots).

    Edges: reward = StepOut.reward; discount = discount * (1 - termination_prob), so nothing is bootstrapped
    past a predicted episode end. value_fn(state) -> [B] and prior_fn(state) -> logits [B, A] evaluate a
    node (the root included) from its model state, e.g. a ValuePredictor's `value` or a policy on
    `features(state)`; without them a node's value is 0 and its prior uniform (pure reward lookahead, fine
    for a model with no value head). `generator` drives both the model's sampling noise and the search's own randomness.
    Extra keyword arguments go to `search` (max_depth, pb_c_init, dirichlet_fraction, temperature, ...).
    """
    spec = model.action_spec
    if spec.kind != "discrete":
        raise ValueError(f"MCTS needs discrete actions, the model's ActionSpec is {spec.kind!r}")
    B, A = state_batch_size(state), spec.n

    def evaluate(node_state) -> tuple[Tensor, Tensor]:
        value = value_fn(node_state).float().cpu().reshape(B) if value_fn is not None else torch.zeros(B)
        logits = prior_fn(node_state).float().cpu() if prior_fn is not None else torch.zeros(B, A)
        return value, logits

    def recurrent_fn(embedding, actions: Tensor) -> tuple[RecurrentOutput, Any]:
        embedding, out = model.step(embedding, actions, generator=generator)
        value, logits = evaluate(embedding)
        disc = discount * (1.0 - out.termination_prob.float())
        return RecurrentOutput(
            reward=out.reward.float(), discount=disc, prior_logits=logits, value=value
        ), embedding

    value, logits = evaluate(state)
    return search(
        RootOutput(logits, value, state), recurrent_fn, num_simulations, generator=generator, **search_kwargs
    )


class MCTSPlanner:
    """MCTS behind the CEMPlanner interface (`reset`, `plan(state, generator) -> PlanResult`), so MPCAgent and
    `vidworld plan` can use either planner unchanged.

    `plan.plan` is the principal variation: the chosen root action, then the most visited child down to the
    first unexpanded node. Its `latents` come from imagining that sequence once more in the model (one
    batch-1 rollout; for a stochastic model a fresh sample of the same future). `expected_return` is the
    search's Q of the chosen action. No state is kept between decisions (no tree reuse): reset() is a no-op.
    """

    def __init__(
        self,
        model,
        num_simulations: int = 32,
        *,
        value_fn=None,
        prior_fn=None,
        discount: float = 0.997,
        **search_kwargs,
    ):
        self.model, self.num_simulations = model, num_simulations
        self.kwargs = dict(value_fn=value_fn, prior_fn=prior_fn, discount=discount, **search_kwargs)

    def reset(self) -> None:
        pass

    def plan(self, state, generator: torch.Generator | None = None) -> PlanResult:
        if state_batch_size(state) != 1:
            raise ValueError(f"plan() takes a batch-1 root state, got batch {state_batch_size(state)}")
        out = mcts_policy(self.model, state, self.num_simulations, generator=generator, **self.kwargs)
        tree, action = out.tree, int(out.action[0])
        actions, node = [action], int(tree.children_index[0, 0, action])
        while node != UNVISITED and int(tree.children_visits[0, node].max()) > 0:
            a = int(tree.children_visits[0, node].argmax())
            actions.append(a)
            node = int(tree.children_index[0, node, a])
        latents = []
        for a in actions:
            state, step = self.model.step(state, torch.tensor([a]), generator=generator)
            latents.append(step.latent[0])
        q = float(out.q_values[0, action])
        return PlanResult(
            action=action,
            plan=torch.tensor(actions),
            expected_return=q,
            return_std=0.0,
            objective=q,
            latents=torch.stack(latents).cpu(),
        )

    def plan_batch(self, state, last: list, generator: torch.Generator | None = None):
        """E independent roots (a batch-E state) in one batched search: (actions: list of E ints, [None] * E,
        the memory a planner without warm start keeps; `last` is ignored). No principal-variation latents."""
        out = mcts_policy(self.model, state, self.num_simulations, generator=generator, **self.kwargs)
        return [int(a) for a in out.action], [None] * state_batch_size(state)
