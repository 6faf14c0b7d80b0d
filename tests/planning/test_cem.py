"""CEM / MPPI planner: real CartPole control through a protocol model, warm start, uncertainty, continuous."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from vidworld.config import ConfigError, from_dict
from vidworld.planning.cem import CEMConfig, CEMPlanner

from .toy_models import Leaky, PointMass, RiskyChain, ScriptedChain, ToyCartPole

CAP = 200


def run_cartpole(cfg: CEMConfig, seed: int) -> int:
    """Replan every step in the REAL gymnasium CartPole-v1 from its true state; return steps survived."""
    model = ToyCartPole()
    planner = CEMPlanner(model, cfg)
    env = gym.make("CartPole-v1", max_episode_steps=CAP)
    env.reset(seed=seed)
    g = torch.Generator().manual_seed(seed)
    steps = 0
    while True:
        result = planner.plan(model.from_physics(env.unwrapped.state), g)
        _, _, terminated, truncated, _ = env.step(result.action)
        steps += 1
        if terminated or truncated:
            env.close()
            return steps


def random_steps(episodes: int = 20) -> float:
    env = gym.make("CartPole-v1")
    env.action_space.seed(0)
    total = 0
    for ep in range(episodes):
        env.reset(seed=100 + ep)
        done = False
        while not done:
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            total += 1
            done = term or trunc
    return total / episodes


def test_cem_keeps_real_cartpole_up():
    baseline = random_steps()
    assert baseline < 40  # random play drops the pole after ~22 steps
    for seed in (0, 1):
        steps = run_cartpole(CEMConfig(), seed)
        assert steps >= 150 and steps >= 5 * baseline, (seed, steps, baseline)


def test_mppi_keeps_real_cartpole_up():
    assert (
        run_cartpole(CEMConfig(mode="mppi", temperature=0.5, horizon=10, population=32, iterations=2), 0)
        >= 150
    )


def test_plan_batch_of_one_root_is_plan():
    """plan_batch with E = 1 draws the same numbers as plan: same action, same final distribution."""
    model = ScriptedChain([0, 1, 2, 1, 0, 2], n=3)
    cfg = CEMConfig(horizon=6, population=16, elites=4, iterations=3, discount=1.0, uncertainty_samples=2)
    one, many = CEMPlanner(model, cfg), CEMPlanner(model, cfg)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    last = [None]
    for t in range(4):
        result = one.plan(model.at(t), g1)
        actions, last = many.plan_batch(model.at(t), last, g2)
        assert actions == [result.action]
        torch.testing.assert_close(last[0][0], one.distribution[0], rtol=0, atol=0)


def test_lockstep_cem_keeps_several_real_cartpoles_up():
    """Three real CartPole-v1 episodes planned as ONE batch of roots (each with its own warm start): every
    episode survives as the single-root planner does, so no root is scored or refitted with another's rollouts."""
    model = ToyCartPole()
    planner = CEMPlanner(model, CEMConfig())
    envs = [gym.make("CartPole-v1", max_episode_steps=CAP) for _ in range(3)]
    for i, env in enumerate(envs):
        env.reset(seed=10 + i)
    g = torch.Generator().manual_seed(0)
    running, memory, steps = [0, 1, 2], {0: None, 1: None, 2: None}, [0, 0, 0]
    while running:
        state = model.from_physics(np.stack([envs[i].unwrapped.state for i in running]))
        actions, last = planner.plan_batch(state, [memory[i] for i in running], g)
        for i, a, m in zip(list(running), actions, last):
            memory[i] = m
            _, _, term, trunc, _ = envs[i].step(a)
            steps[i] += 1
            if term or trunc:
                running.remove(i)
    assert min(steps) >= 150, steps


def test_objective_alive_weighting_and_value_bootstrap():
    model = Leaky(p=0.5)
    cfg = CEMConfig(horizon=3, population=4, elites=2, discount=0.9)
    state = model.init(torch.zeros(1, 1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 0, dtype=torch.long))
    acts = torch.zeros(4, 3, dtype=torch.long)
    returns, latents = CEMPlanner(model, cfg).evaluate(state, acts)
    # sum_t 0.9^t * 0.5^t * 1  =  1 + 0.45 + 0.2025
    torch.testing.assert_close(returns, torch.full((4, 1), 1.6525))
    assert len(latents) == 3 and latents[0].shape == (4, 1)
    returns, _ = CEMPlanner(model, cfg, value_fn=lambda s: torch.full((len(s.t),), 7.0)).evaluate(state, acts)
    # + 0.9^3 * alive_3 (0.125) * value (7)
    torch.testing.assert_close(returns, torch.full((4, 1), 1.6525 + 0.729 * 0.125 * 7))


def test_finds_known_optimum_and_warm_start_shifts():
    target = [0, 1, 2, 1, 0, 2]
    model = ScriptedChain(target, n=3)
    cfg = CEMConfig(horizon=6, population=64, elites=6, iterations=4, discount=1.0)
    planner = CEMPlanner(model, cfg)
    uniform = torch.full((6, 3), 1 / 3)
    torch.testing.assert_close(planner.prior()[0], uniform)
    g = torch.Generator().manual_seed(0)
    result = planner.plan(model.at(0), g)
    assert result.plan.tolist() == target and result.action == 0 and result.expected_return == 6.0
    assert result.latents.shape == (6, 1) and result.return_std == 0.0
    (final,) = planner.distribution
    assert final.argmax(-1).tolist() == target
    assert float(final.min()) >= cfg.min_prob - 1e-6
    torch.testing.assert_close(final.sum(-1), torch.ones(6))
    (prior,) = planner.prior()  # shifted by one step, fresh uniform last step
    torch.testing.assert_close(prior[:-1], final[1:])
    torch.testing.assert_close(prior[-1], torch.full((3,), 1 / 3))
    assert planner.plan(model.at(1), g).plan.tolist() == target[1:] + target[:1]
    planner.reset()
    torch.testing.assert_close(planner.prior()[0], uniform)
    cold = CEMPlanner(model, CEMConfig(horizon=6, warm_start=False))
    cold.plan(model.at(0), g)
    torch.testing.assert_close(cold.prior()[0], uniform)


def test_warm_start_beats_cold_start_with_a_tiny_budget():
    model = ScriptedChain([0, 1, 2, 1, 0, 2], n=3)
    g = torch.Generator().manual_seed(1)
    good = CEMPlanner(model, CEMConfig(horizon=6, population=64, elites=6, iterations=4, discount=1.0))
    good.plan(model.at(0), g)
    tiny = {"horizon": 6, "population": 8, "elites": 2, "iterations": 1, "discount": 1.0}
    good.cfg = CEMConfig(**tiny)  # same planner, warm-started, now with a tiny budget
    warm = good.plan(model.at(1), g)
    cold = CEMPlanner(model, CEMConfig(**tiny)).plan(model.at(1), g)
    assert warm.expected_return >= 5.0 > cold.expected_return  # shifted plan: 5 of 6 steps already right


def test_uncertainty_penalty_prefers_the_deterministic_branch():
    model = RiskyChain()
    state = model.init(torch.zeros(1, 1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 0, dtype=torch.long))
    safe_return = sum(0.5 * 0.99**t for t in range(4))
    base = {"horizon": 4, "population": 32, "elites": 4, "iterations": 3}
    # Without a penalty, a single noisy sample per candidate: the max picks a lucky risky plan.
    naive = CEMPlanner(model, CEMConfig(**base)).plan(state, torch.Generator().manual_seed(0))
    assert 1 in naive.plan.tolist() and naive.expected_return > safe_return
    # Averaging M = 16 samples alone is not enough: the best of many noisy means is still a risky plan.
    averaged = CEMPlanner(model, CEMConfig(**base, uncertainty_samples=16)).plan(
        state, torch.Generator().manual_seed(0)
    )
    assert 1 in averaged.plan.tolist() and averaged.return_std > 0.5
    # M = 16 noise samples per candidate and a std penalty: same mean, so the certain branch wins.
    cfg = CEMConfig(**base, uncertainty_samples=16, uncertainty_penalty=1.0)
    careful = CEMPlanner(model, cfg).plan(state, torch.Generator().manual_seed(0))
    assert careful.plan.tolist() == [0, 0, 0, 0] and careful.action == 0
    assert careful.return_std == 0.0
    assert math.isclose(careful.expected_return, safe_return, rel_tol=1e-6)
    assert careful.objective == careful.expected_return


def test_continuous_gaussian_cem_drives_point_mass_to_target():
    model = PointMass(target=1.0)
    planner = CEMPlanner(model, CEMConfig(horizon=10, population=64, elites=8, iterations=3, discount=1.0))
    g = torch.Generator().manual_seed(0)
    state = model.at(0.0)
    for _ in range(40):
        result = planner.plan(state, g)
        assert result.action.shape == (1,) and result.plan.shape == (10, 1)
        assert -1.0 <= float(result.action) <= 1.0
        state, _ = model.step(state, result.action[None], g)
    x, v = state.pv[0].tolist()
    assert abs(x - 1.0) < 0.05 and abs(v) < 0.05, (x, v)
    mean, std = planner.distribution
    assert mean.shape == (10, 1) and float(std.min()) >= 0.01 * 2.0 - 1e-6


def test_seeded_plans_are_reproducible():
    model = RiskyChain()
    state = model.init(torch.zeros(1, 1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 0, dtype=torch.long))
    cfg = CEMConfig(horizon=5, population=16, elites=4, uncertainty_samples=3)
    a = CEMPlanner(model, cfg).plan(state, torch.Generator().manual_seed(3))
    b = CEMPlanner(model, cfg).plan(state, torch.Generator().manual_seed(3))
    assert a.plan.tolist() == b.plan.tolist() and a.expected_return == b.expected_return


def test_config_and_input_errors():
    with pytest.raises(ValueError, match="mode"):
        CEMConfig(mode="random")
    with pytest.raises(ValueError, match="elites"):
        CEMConfig(population=4, elites=8)
    cfg = from_dict(CEMConfig, {"mode": "mppi", "horizon": 5, "uncertainty_samples": 4})
    assert cfg.mode == "mppi" and cfg.horizon == 5
    with pytest.raises(ConfigError):
        from_dict(CEMConfig, {"horizn": 5})
    model = ToyCartPole()
    with pytest.raises(ValueError, match="batch-1"):
        CEMPlanner(model).plan(model.from_physics(torch.zeros(2, 4)))
