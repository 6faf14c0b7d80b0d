"""MCTS: hand-computed trees, an independent scalar reference, batching, noise, the world-model adapter."""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import Tensor

from vidworld.planning.mcts import RecurrentOutput, RootOutput, search
from vidworld.planning.mcts_planner import mcts_policy

from .toy_models import ToyCartPole


@dataclass(frozen=True)
class Code:
    code: Tensor  # [B] long, identifies the node (path) in a synthetic tree


def by_action(rewards: list[float], gamma: float):
    """recurrent_fn: reward depends only on the action, fixed discount, value 0, uniform prior."""

    def fn(emb: Code, a: Tensor):
        B, A = a.shape[0], len(rewards)
        out = RecurrentOutput(
            torch.tensor(rewards)[a], torch.full((B,), gamma), torch.zeros(B, A), torch.zeros(B)
        )
        return out, Code(emb.code * A + a + 1)

    return fn


def root(B: int, A: int, value: float = 0.0, codes: list[int] | None = None) -> RootOutput:
    code = torch.tensor(codes) if codes is not None else torch.zeros(B, dtype=torch.long)
    return RootOutput(torch.zeros(B, A), torch.full((B,), value), Code(code))


def test_hand_computed_two_action_tree():
    # Rewards r(a0) = 1, r(a1) = 0 at every node, discount 0.5, values 0, uniform priors, c(N) ~ 1.25.
    # sim1: all scores tie -> a0 (node 1). backup: Q(root,a0) = 1, V(root) = (0 + 1) / 2 = 0.5. stats [1, 1]
    # sim2: no spread -> Qn = 0; prior term sqrt(2)c/2 * (1/2 vs 1/1) -> a1 (node 2). Q(root,a1) = 0,
    #       V(root) = (0.5 * 2 + 0) / 3 = 1/3. stats [0, 1]
    # sim3: a0: 1 + sqrt(3)c/4, a1: 0 + sqrt(3)c/4 -> a0; node 1 untouched children tie -> a0 (node 3, r=1).
    #       backup: V(n1) = (0 + 1) / 2 = 0.5, Q(root,a0) = 1 + 0.5 * 0.5 = 1.25,
    #       V(root) = (1 + 1.5) / 4 = 0.625
    # sim4: root a0: 1.25/1.25 + 2c/6 = 1.417 vs a1: 0 + 2c/4 = 0.625 -> a0. node1: a0 Qn = 1/1.25 = 0.8
    #       + 0.354c vs a1 0 + 0.707c -> a0; node 3 ties -> a0 (node 4). backup: V(n3) = 0.5,
    #       V(n1) = (0.5 * 2 + 1 + 0.5) / 3 = 5/6, Q(root,a0) = 1 + 5/12,
    #       V(root) = (0.625 * 4 + 1.75) / 5 = 0.85
    out = search(root(1, 2), by_action([1.0, 0.0], 0.5), 4)
    assert out.visit_counts.tolist() == [[3, 1]]
    torch.testing.assert_close(out.q_values, torch.tensor([[1 + 5 / 12, 0.0]]))
    torch.testing.assert_close(out.root_value, torch.tensor([0.85]))
    torch.testing.assert_close(out.action_weights, torch.tensor([[0.75, 0.25]]))
    assert out.action.tolist() == [0]
    t = out.tree
    assert t.children_index[0, :5].tolist() == [[1, 2], [3, -1], [-1, -1], [4, -1], [-1, -1]]
    assert t.node_visits[0].tolist() == [5, 3, 1, 2, 1]
    torch.testing.assert_close(t.node_values[0], torch.tensor([0.85, 5 / 6, 0.0, 0.5, 0.0]))
    torch.testing.assert_close(torch.stack([t.q_min, t.q_max], 1), torch.tensor([[0.0, 1 + 5 / 12]]))


def test_hand_computed_unvisited_child_rule():
    # 3 actions, rewards [0, 0.2, 0.1], discount 0.5, root value 1. sim1 -> a0 (Q 0, V(root) 0.5); sim2: no
    # spread -> prior favours unvisited -> a1 (Q 0.2, V(root) 0.4, stats [0, 0.2]). sim3, c*sqrt(3)/3 = 0.722:
    #   "min":    a0: 0 + 0.361, a1: 1 + 0.361, a2 unvisited: 0 + 0.722 -> a1 again -> visits [1, 2, 0]
    #   "parent": a2's Q := V(root) = 0.4 -> Qn = 2 -> 2.722 wins -> visits [1, 1, 1]
    fn = by_action([0.0, 0.2, 0.1], 0.5)
    assert search(root(1, 3, value=1.0), fn, 3, unvisited_q="min").visit_counts.tolist() == [[1, 2, 0]]
    assert search(root(1, 3, value=1.0), fn, 3, unvisited_q="parent").visit_counts.tolist() == [[1, 1, 1]]


def test_min_max_normalisation_makes_search_scale_free():
    small = search(root(1, 2), by_action([1.0, 0.0], 0.5), 12)
    big = search(root(1, 2), by_action([1000.0, 0.0], 0.5), 12)
    assert small.visit_counts.tolist() == big.visit_counts.tolist()
    torch.testing.assert_close(big.q_values, 1000 * small.q_values)
    # Unnormalised, Q(a0) = 1000 after sim 1 would swamp the O(1) prior term and a1 would never be tried.
    assert (big.visit_counts > 0).all()


# ----- an independent scalar reference (one root, dicts, float64), written from the MuZero/mctx equations
def hash_tree(A: int):
    def fn(emb: Code, a: Tensor):
        c = (emb.code * A + a + 1) % 1_000_003
        h = (c * 2654435761) % 1_000_003
        reward = (h % 1000).float() / 1000
        discount = torch.where(h % 7 == 0, torch.zeros(()), torch.full((), 0.9))
        value = ((h // 1000) % 100).float() / 100 - 0.5
        logits = torch.stack([((h // (k + 3)) % 10).float() / 5 for k in range(A)], -1)
        return RecurrentOutput(reward, discount, logits, value), Code(c)

    return fn


def reference_search(code: int, A: int, sims: int, max_depth: int, unvisited: str, c1=1.25, c2=19652.0):
    fn = hash_tree(A)
    new = lambda v, logits, emb: {
        "N": 1,
        "V": v,
        "P": torch.softmax(torch.tensor(logits), 0).tolist(),
        "emb": emb,
        "kids": {},
        "r": {},
        "d": {},
        "n": [0] * A,
        "up": None,
    }
    rootn = new(0.0, [0.0] * A, code)
    lo, hi = math.inf, -math.inf
    for _ in range(sims):
        node, depth = rootn, 0
        while True:
            scores = []
            for a in range(A):
                u = (
                    node["P"][a]
                    * math.sqrt(node["N"])
                    / (1 + node["n"][a])
                    * (c1 + math.log((node["N"] + c2 + 1) / c2))
                )
                if node["n"][a] > 0:
                    q = node["r"][a] + node["d"][a] * node["kids"][a]["V"]
                elif unvisited == "parent":
                    q = node["V"]
                else:
                    q = None
                qn = 0.0 if q is None or hi <= lo else (q - lo) / (hi - lo)
                scores.append(qn + u)
            a = max(range(A), key=lambda i: (scores[i], -i))
            depth += 1
            child = node["kids"].get(a)
            if child is None or depth >= max_depth:
                break
            node = child
        out, emb = fn(Code(torch.tensor([node["emb"]])), torch.tensor([a]))
        v, logits = float(out.value[0]), out.prior_logits[0].tolist()
        if child is None:
            child = new(v, logits, int(emb.code[0]))
            child["up"] = (node, a)
            node["kids"][a] = child
        else:  # re-expansion at the depth limit (as mctx): fresh value, one more visit
            child.update(N=child["N"] + 1, V=v, P=torch.softmax(torch.tensor(logits), 0).tolist())
        node["r"][a], node["d"][a] = float(out.reward[0]), float(out.discount[0])
        g, c = child["V"], child
        while c["up"] is not None:
            p, a = c["up"]
            g = p["r"][a] + p["d"][a] * g
            p["V"] = (p["V"] * p["N"] + g) / (p["N"] + 1)
            p["N"] += 1
            p["n"][a] += 1
            q = p["r"][a] + p["d"][a] * c["V"]
            lo, hi = min(lo, q), max(hi, q)
            c = p
    return rootn["n"], rootn["V"]


@pytest.mark.parametrize("max_depth,unvisited", [(None, "min"), (3, "min"), (4, "parent")])
def test_batched_search_matches_scalar_reference(max_depth, unvisited):
    A, sims, codes = 3, 25, [0, 17, 123, 999]
    out = search(root(4, A, codes=codes), hash_tree(A), sims, max_depth=max_depth, unvisited_q=unvisited)
    for b, code in enumerate(codes):
        visits, value = reference_search(code, A, sims, max_depth or sims, unvisited)
        assert out.visit_counts[b].tolist() == visits, (b, out.visit_counts[b], visits)
        assert math.isclose(float(out.root_value[b]), value, rel_tol=1e-4, abs_tol=1e-5)
        alone = search(
            root(1, A, codes=[code]), hash_tree(A), sims, max_depth=max_depth, unvisited_q=unvisited
        )
        assert alone.visit_counts[0].tolist() == visits
        torch.testing.assert_close(alone.q_values[0], out.q_values[b])
    if max_depth is not None:  # the depth limit holds: no node deeper than max_depth
        depth = torch.zeros(4, sims + 1, dtype=torch.long)
        for i in range(1, sims + 1):
            p = out.tree.parents[:, i]
            depth[:, i] = torch.where(p >= 0, depth.gather(1, p.clamp_min(0)[:, None])[:, 0] + 1, 0)
        assert int(depth.max()) <= max_depth


def test_dirichlet_noise_is_seeded_and_mixes_into_root_prior():
    def run(seed):
        return search(
            root(2, 4),
            hash_tree(4),
            8,
            dirichlet_fraction=0.25,
            dirichlet_alpha=0.3,
            generator=torch.Generator().manual_seed(seed),
        )

    a, b, c = run(0), run(0), run(1)
    prior = a.tree.children_prior[:, 0]
    torch.testing.assert_close(prior, b.tree.children_prior[:, 0])
    assert a.visit_counts.tolist() == b.visit_counts.tolist()
    assert not torch.allclose(prior, c.tree.children_prior[:, 0])
    torch.testing.assert_close(prior.sum(-1), torch.ones(2))
    noise = (prior - 0.75 * 0.25) / 0.25  # (1 - f) * uniform + f * Dirichlet
    assert float(noise.min()) >= -1e-6 and float((prior - 0.25).abs().sum(-1).max()) <= 2 * 0.25 + 1e-6
    clean = search(root(2, 4), hash_tree(4), 8)
    torch.testing.assert_close(clean.tree.children_prior[:, 0], torch.full((2, 4), 0.25))


def test_invalid_actions_and_temperature():
    invalid = torch.tensor([[True, False, False], [False, False, True]])
    out = search(root(2, 3), hash_tree(3), 12, invalid_actions=invalid)
    assert int(out.visit_counts[invalid].sum()) == 0 and (out.tree.children_index[:, 0][invalid] == -1).all()
    assert not invalid[torch.arange(2), out.action].any()
    seen = set()
    for s in range(20):
        o = search(root(1, 3), hash_tree(3), 12, temperature=1.0, generator=torch.Generator().manual_seed(s))
        assert int(o.visit_counts[0, o.action[0]]) > 0
        seen.add(int(o.action[0]))
    assert len(seen) > 1  # sampled in proportion to visits, not always the argmax
    with pytest.raises(ValueError, match="num_simulations"):
        search(root(1, 3), hash_tree(3), 0)


GAMMA = 0.97


def survival_value(state) -> Tensor:
    """A critic that only knows "alive is worth 1 / (1 - gamma)"; termination must come from the model."""
    return torch.full((state.phys.shape[0],), 1 / (1 - GAMMA))


def test_mcts_policy_avoids_predicted_termination_on_toy_cartpole():
    model = ToyCartPole()
    # Pole leaning / falling right must be pushed right (1), mirrored states left (0): held constant, the
    # wrong push terminates after 2 steps, the right one survives 13+ (sanity-checked below over 3 steps).
    phys = torch.tensor(
        [[0.5, 0, 0.15, 1.0], [-0.3, 0, -0.15, -1.0], [0, 0, 0.19, 0.0], [0, 0, -0.19, 0.0]],
        dtype=torch.float64,
    )
    expected = [1, 0, 1, 0]
    for a in (0, 1):  # sanity of the scenario
        s, alive = model.from_physics(phys), torch.ones(4, dtype=torch.bool)
        for _ in range(3):
            s, o = model.step(s, torch.full((4,), a))
            alive &= ~o.terminated
        assert alive.tolist() == [e == a for e in expected]
    right = torch.tensor(expected)[:, None]
    for sims in (16, 32):
        out = mcts_policy(model, model.from_physics(phys), sims, value_fn=survival_value, discount=GAMMA)
        assert out.action.tolist() == expected, (sims, out.visit_counts)
        for stat in (out.visit_counts, out.q_values):  # more visits and a higher Q for the saving push
            assert (stat.gather(1, right) > stat.gather(1, 1 - right)).all(), (sims, stat)


def test_mcts_policy_balances_real_cartpoles_as_a_batch():
    model = ToyCartPole()

    def upright_value(state) -> Tensor:  # shaped critic: less value as the pole leans / heads over
        z = state.phys
        lean = (z[:, 2] + 0.1 * z[:, 3]).abs() / model.theta_threshold
        return (1 - lean).clamp(0, 1) / (1 - GAMMA)

    envs = [gym.make("CartPole-v1") for _ in range(3)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    g = torch.Generator().manual_seed(0)
    for _ in range(100):  # 3 roots searched together each step
        phys = np.stack([env.unwrapped.state for env in envs])
        out = mcts_policy(
            model, model.from_physics(phys), 6, value_fn=upright_value, discount=GAMMA, generator=g
        )
        for env, a in zip(envs, out.action.tolist()):
            _, _, terminated, _, _ = env.step(a)
            assert not terminated
    with pytest.raises(ValueError, match="discrete"):
        from .toy_models import PointMass

        mcts_policy(PointMass(), PointMass().at(0.0), 4)
