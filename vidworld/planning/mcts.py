"""Batched MuZero-style Monte-Carlo tree search in the style of DeepMind's mctx.

`search(root, recurrent_fn, num_simulations)` knows nothing of world models: the root gives prior logits,
a value and an embedding (any batch-first state dataclass), and `recurrent_fn(embedding, actions)` expands
one edge. `mcts_policy` at the bottom adapts a protocol world model to it.

The tree is a set of tensors [B, num_nodes, ...] searched for B independent roots at once (mctx's layout).
A node first expanded by simulation i has index i + 1; node 0 is the root. Each simulation adds exactly one
node per root, so embeddings are kept as one batch-B state per simulation ("slot") plus a [B, num_nodes]
table of which slot holds each node's embedding; gathering parents = `cat_states` of the needed slots and
one row index.

Algorithm (Schrittwieser et al. 2020, "MuZero", Appendix B; mctx's `search`):
  selection  argmax_a  Qn(s, a) + P(s, a) * sqrt(N(s)) / (1 + N(s, a)) * (c1 + log((N(s) + c2 + 1) / c2))
             with c1 = pb_c_init, c2 = pb_c_base. As in mctx, N(s) counts the node's own expansion as one
             visit (the root starts at 1), so the very first selection already follows the priors. Ties go
             to the lowest action index (mctx adds 1e-7 noise instead; exact ties keep hand-computed tests
             exact).
  Q          Q(s, a) = r(s, a) + d(s, a) * V(child), per-edge reward r and discount d from recurrent_fn
             (d = 0 after a terminal edge cuts the bootstrap).
  Qn         MuZero's min-max normalisation over the whole tree of each root: running min/max of every Q
             backed up so far (muzero-general / EfficientZero update the stats with r + gamma * V, the
             quantity being normalised). Qn = (Q - min) / (max - min), and 0 while max <= min (no spread
             seen yet: the prior alone decides, like mctx's epsilon guard). Scale-free, so rewards of any
             magnitude work.
  unvisited  `unvisited_q="min"` (default, MuZero pseudocode and mctx's default qtransform): an unvisited
             child scores Qn = 0, the bottom of the range seen. `"parent"`: its Q is taken as the parent's
             current value estimate (the "completed Q" idea of Gumbel MuZero / mctx), then normalised, which
             explores more when the parent looks better than its visited children.
  expansion  recurrent_fn on (parent embedding, action) -> reward, discount, prior logits, value of the child.
  backup     G <- r + d * G along the path; V(s) <- running mean of the G's (with the node's own value as its
             first sample, mctx's `backward`).
With `max_depth`, a simulation that reaches the depth limit on an already expanded node re-expands it
(mctx does the same): the fresh recurrent output overwrites its value, and the node's visit count grows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vidworld.protocol import cat_states, index_state, state_batch_size

UNVISITED = -1


@dataclass(frozen=True)
class RootOutput:
    """prior_logits [B, A]; value [B]; embedding: batch-B state dataclass handed to recurrent_fn."""

    prior_logits: Tensor
    value: Tensor
    embedding: Any


@dataclass(frozen=True)
class RecurrentOutput:
    """One expanded edge per root: reward [B], discount [B] (0 = terminal), prior_logits [B, A], value [B]."""

    reward: Tensor
    discount: Tensor
    prior_logits: Tensor
    value: Tensor


RecurrentFn = Callable[[Any, Tensor], tuple[RecurrentOutput, Any]]


@dataclass(frozen=True)
class Tree:
    """Search tree of B roots, N = num_simulations + 1 nodes, A actions (tensors filled in place by search).

    node_visits [B, N] long; node_values [B, N] (running mean of backed-up returns); raw_values [B, N]
    (recurrent_fn's value); parents, action_from_parent [B, N] long (-1 at the root / unexpanded);
    children_index [B, N, A] long (-1 = unvisited); children_prior [B, N, A] probabilities (root: after
    Dirichlet noise); children_visits, children_values, children_rewards, children_discounts [B, N, A];
    q_min, q_max [B] the per-root min-max statistics.
    """

    node_visits: Tensor
    node_values: Tensor
    raw_values: Tensor
    parents: Tensor
    action_from_parent: Tensor
    children_index: Tensor
    children_prior: Tensor
    children_visits: Tensor
    children_values: Tensor
    children_rewards: Tensor
    children_discounts: Tensor
    q_min: Tensor
    q_max: Tensor

    @classmethod
    def empty(cls, B: int, N: int, A: int) -> Tree:
        """A tree with nothing expanded: links UNVISITED, counts and statistics 0, min-max stats empty."""
        long = {"node_visits": (B, N), "children_visits": (B, N, A)}
        links = {"parents": (B, N), "action_from_parent": (B, N), "children_index": (B, N, A)}
        values = ("node_values", "raw_values")
        edges = ("children_prior", "children_values", "children_rewards", "children_discounts")
        return cls(
            **{k: torch.zeros(s, dtype=torch.long) for k, s in long.items()},
            **{k: torch.full(s, UNVISITED, dtype=torch.long) for k, s in links.items()},
            **{k: torch.zeros(B, N) for k in values},
            **{k: torch.zeros(B, N, A) for k in edges},
            q_min=torch.full((B,), math.inf),
            q_max=torch.full((B,), -math.inf),
        )

    def qvalues(self, node: Tensor) -> Tensor:
        """Q(s, a) = r + d * V(child) for nodes [B] -> [B, A] (0 for unvisited children, as mctx)."""
        b = torch.arange(node.shape[0])
        return (
            self.children_rewards[b, node] + self.children_discounts[b, node] * self.children_values[b, node]
        )

    def normalize(self, q: Tensor) -> Tensor:
        """MuZero's min-max normalisation per root: q [B, A] -> [B, A]; 0 where max <= min."""
        lo, hi = self.q_min[:, None], self.q_max[:, None]
        spread = hi - lo
        ok = spread > 0
        return torch.where(
            ok, (q - lo) / torch.where(ok, spread, torch.ones_like(spread)), torch.zeros_like(q)
        )


@dataclass(frozen=True)
class SearchOutput:
    """action [B] long; action_weights [B, A] visit-count distribution (the policy target MuZero trains on);
    root_value [B] the root's backed-up value; visit_counts [B, A] long; q_values [B, A] root Q (0 where
    unvisited); tree: the full search tree for inspection."""

    action: Tensor
    action_weights: Tensor
    root_value: Tensor
    visit_counts: Tensor
    q_values: Tensor
    tree: Tree


class _Embeddings:
    """Embeddings of all nodes: one batch-B state per simulation and a [B, N] node -> slot table."""

    def __init__(self, root_embedding, B: int, N: int):
        self.slots = [root_embedding]
        self.node_slot = torch.zeros(B, N, dtype=torch.long)

    def add(self, embedding, nodes: Tensor) -> None:
        self.node_slot[torch.arange(nodes.shape[0]), nodes] = len(self.slots)
        self.slots.append(embedding)

    def gather(self, nodes: Tensor):
        """Embeddings of nodes [B] (one per root) as one batch-B state."""
        B = nodes.shape[0]
        slot = self.node_slot[torch.arange(B), nodes]
        used = torch.unique(slot)  # sorted
        if used.numel() == 1:
            return self.slots[int(used[0])]
        states = cat_states([self.slots[int(s)] for s in used])
        rows = torch.searchsorted(used, slot) * B + torch.arange(B)
        return index_state(states, rows)


def _softmax(logits: Tensor) -> Tensor:
    """Softmax over the last dim, written out: torch.softmax on a small [B, A] batch enters an OpenMP
    parallel region that measured ~10 ms per call on a 2-thread CPU, 1000x the arithmetic."""
    e = (logits - logits.amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def _dirichlet(alpha: float, shape: tuple[int, int], generator: torch.Generator | None) -> Tensor:
    # Gamma(alpha) / sum is Dirichlet(alpha); torch.distributions takes no generator, _standard_gamma does.
    dev = generator.device if generator is not None else torch.device("cpu")
    g = torch._standard_gamma(torch.full(shape, float(alpha), device=dev), generator=generator).cpu()
    return g / g.sum(-1, keepdim=True).clamp_min(1e-30)


def _select(
    tree: Tree, node: Tensor, pb_c_init: float, pb_c_base: float, unvisited_q: str, invalid: Tensor | None
) -> Tensor:
    """pUCT action at nodes [B] (one per root) -> [B]; `invalid` [B, A] masks actions (root only)."""
    b = torch.arange(node.shape[0])
    visits = tree.children_visits[b, node].float()
    n = tree.node_visits[b, node].float()[:, None]
    pb_c = pb_c_init + torch.log((n + pb_c_base + 1) / pb_c_base)
    u = pb_c * tree.children_prior[b, node] * n.sqrt() / (visits + 1)
    q = tree.qvalues(node)
    if unvisited_q == "parent":
        q = torch.where(visits > 0, q, tree.node_values[b, node][:, None])
    qn = tree.normalize(q)
    if unvisited_q == "min":
        qn = torch.where(visits > 0, qn, torch.zeros_like(qn))
    score = qn + u
    if invalid is not None:
        score = score.masked_fill(invalid, -math.inf)
    return score.argmax(-1)


def _backup(tree: Tree, leaf: Tensor) -> None:
    """mctx's `backward` from leaves [B]: G <- r + d * G up to each root, running-mean values, visit counts
    and the per-root min-max statistics (roots finish at different depths, so rows drop out as they do)."""
    idx, value = leaf.clone(), tree.node_values[torch.arange(leaf.shape[0]), leaf].clone()
    rows = torch.arange(leaf.shape[0])
    while rows.numel():
        i = idx[rows]
        p, a = tree.parents[rows, i], tree.action_from_parent[rows, i]
        r, d = tree.children_rewards[rows, p, a], tree.children_discounts[rows, p, a]
        g = r + d * value[rows]
        count = tree.node_visits[rows, p].float()
        tree.node_values[rows, p] = (tree.node_values[rows, p] * count + g) / (count + 1)
        tree.node_visits[rows, p] += 1
        tree.children_values[rows, p, a] = tree.node_values[rows, i]
        tree.children_visits[rows, p, a] += 1
        q = r + d * tree.children_values[rows, p, a]
        tree.q_min[rows] = torch.minimum(tree.q_min[rows], q)
        tree.q_max[rows] = torch.maximum(tree.q_max[rows], q)
        value[rows], idx[rows] = g, p
        rows = rows[p != 0]


def search(
    root: RootOutput,
    recurrent_fn: RecurrentFn,
    num_simulations: int,
    *,
    max_depth: int | None = None,
    pb_c_init: float = 1.25,
    pb_c_base: float = 19652.0,
    dirichlet_alpha: float = 0.3,
    dirichlet_fraction: float = 0.0,
    temperature: float = 0.0,
    unvisited_q: str = "min",
    invalid_actions: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> SearchOutput:
    """Run `num_simulations` MuZero simulations from B roots (see the module docstring for the algorithm).

    root: RootOutput with prior_logits [B, A], value [B], embedding (batch B).
    recurrent_fn(embedding [B], actions long [B]) -> (RecurrentOutput, next embedding [B]).
    dirichlet_fraction > 0 mixes Dirichlet(dirichlet_alpha) noise into the root priors (MuZero's exploration
    for self-play; 0 = off). invalid_actions [B, A] bool are never selected at the root.
    temperature: 0 -> action = most visited (ties: higher Q, then lower index); > 0 -> sampled with
    probability proportional to visits ** (1 / temperature) using `generator`.
    """
    if num_simulations < 1:
        raise ValueError(f"num_simulations must be >= 1, got {num_simulations}")
    if unvisited_q not in ("min", "parent"):
        raise ValueError(f"unvisited_q must be 'min' or 'parent', got {unvisited_q!r}")
    logits = (
        root.prior_logits.detach().float().cpu()
    )  # the tree lives on the CPU, whatever the model's device
    if logits.dim() != 2:
        raise ValueError(f"root.prior_logits must be [B, A], got {tuple(logits.shape)}")
    B, A = logits.shape
    if tuple(root.value.shape) != (B,) or state_batch_size(root.embedding) != B:
        raise ValueError(
            f"root value must be [B={B}] and the embedding batch {B}, got {tuple(root.value.shape)}"
        )
    if invalid_actions is not None and (invalid_actions.shape != (B, A) or invalid_actions.all(-1).any()):
        raise ValueError(f"invalid_actions must be bool [B={B}, A={A}] leaving one valid action per root")
    max_depth = num_simulations if max_depth is None else max_depth
    N = num_simulations + 1
    tree = Tree.empty(B, N, A)
    b = torch.arange(B)
    prior = _softmax(logits)
    if dirichlet_fraction > 0:
        prior = (1 - dirichlet_fraction) * prior + dirichlet_fraction * _dirichlet(
            dirichlet_alpha, (B, A), generator
        )
    tree.children_prior[:, 0] = prior
    tree.node_values[:, 0] = root.value.detach().float().cpu()
    tree.raw_values[:, 0] = root.value.detach().float().cpu()
    tree.node_visits[:, 0] = 1
    embeddings = _Embeddings(root.embedding, B, N)

    for sim in range(num_simulations):
        # --- selection: walk down until an unexpanded edge (or the depth limit) ---
        node = torch.zeros(B, dtype=torch.long)
        parent, action = node.clone(), node.clone()
        active = torch.ones(B, dtype=torch.bool)
        depth = 0
        while True:
            a = _select(
                tree, node, pb_c_init, pb_c_base, unvisited_q, invalid_actions if depth == 0 else None
            )
            parent = torch.where(active, node, parent)
            action = torch.where(active, a, action)
            nxt = tree.children_index[b, node, a]
            depth += 1
            active = active & (nxt != UNVISITED) & (depth < max_depth)
            if not bool(active.any()):
                break
            node = torch.where(active, nxt, node)
        # --- expansion: one recurrent_fn call for all B roots ---
        leaf = tree.children_index[b, parent, action]
        leaf = torch.where(leaf == UNVISITED, torch.full_like(leaf, sim + 1), leaf)
        out, embedding = recurrent_fn(embeddings.gather(parent), action)
        fields = {}
        for name, shape in (("reward", (B,)), ("discount", (B,)), ("value", (B,)), ("prior_logits", (B, A))):
            x = getattr(out, name)
            if tuple(x.shape) != shape:
                raise ValueError(f"recurrent_fn {name} must have shape {shape}, got {tuple(x.shape)}")
            fields[name] = x.detach().float().cpu()
        embeddings.add(embedding, leaf)
        tree.node_visits[b, leaf] += 1
        tree.node_values[b, leaf] = fields["value"]
        tree.raw_values[b, leaf] = fields["value"]
        tree.children_prior[b, leaf] = _softmax(fields["prior_logits"])
        tree.children_index[b, parent, action] = leaf
        tree.children_rewards[b, parent, action] = fields["reward"]
        tree.children_discounts[b, parent, action] = fields["discount"]
        tree.parents[b, leaf] = parent
        tree.action_from_parent[b, leaf] = action
        _backup(tree, leaf)

    visits = tree.children_visits[:, 0]
    q_root = tree.qvalues(torch.zeros(B, dtype=torch.long))
    if temperature > 0:
        dev = generator.device if generator is not None else torch.device("cpu")
        w = (visits.double() ** (1.0 / temperature)).to(dev)
        act = torch.multinomial(w / w.sum(-1, keepdim=True), 1, generator=generator).squeeze(1).cpu()
    else:
        most = visits == visits.max(-1, keepdim=True).values
        act = torch.where(most, q_root, torch.full_like(q_root, -math.inf)).argmax(-1)
    return SearchOutput(
        action=act,
        action_weights=visits.float() / visits.sum(-1, keepdim=True).float(),
        root_value=tree.node_values[:, 0].clone(),
        visit_counts=visits.clone(),
        q_values=q_root,
        tree=tree,
    )
