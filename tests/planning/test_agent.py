"""MPCAgent: real CartPole through pixels, context bookkeeping, recorded imagination, input errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from vidworld.planning import CEMConfig, CEMPlanner, MCTSPlanner, MPCAgent

from .toy_models import PointMass, ToyCartPole


class SpyCartPole(ToyCartPole):
    """ToyCartPole that remembers every context it was initialised from."""

    def __init__(self, context_length: int = 2):
        super().__init__()
        self.context_length = context_length
        self.contexts = []

    def init(self, context_frames, context_actions):
        self.contexts.append((context_frames.clone(), context_actions.clone()))
        return super().init(context_frames, context_actions)


def frame_of(env) -> np.ndarray:
    """The real env's current frame: uint8 [3, 16, 32] carrying its exact state (test codec)."""
    return ToyCartPole.encode(torch.as_tensor(np.asarray(env.unwrapped.state))[None])[0].numpy()


def test_agent_keeps_real_cartpole_up_through_frames_and_records_imagination():
    model = SpyCartPole()
    agent = MPCAgent(
        model, CEMPlanner(model, CEMConfig(horizon=10, population=32, iterations=2)), record=True
    )
    env = gym.make("CartPole-v1", max_episode_steps=150)
    env.reset(seed=3)
    obs = frame_of(env)
    agent.reset(obs)
    g = torch.Generator().manual_seed(0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        action = agent.act(obs, g)
        _, _, terminated, truncated, _ = env.step(action)
        obs = frame_of(env)
        steps += 1
    assert steps == 150 and not terminated
    # The model was re-initialised from the real context every step (K = 2 frames, exact state recovered).
    assert len(model.contexts) == 150 and model.contexts[-1][0].shape == (1, 2, 3, 16, 32)
    assert model.contexts[-1][1].shape == (1, 1)
    assert len(agent.plans) == 150 and agent.plans[0].latents.shape == (10, 4)
    imagined = agent.imagined_frames(0)
    assert imagined.dtype == torch.uint8 and imagined.shape == (10, 3, 16, 32)
    torch.testing.assert_close(ToyCartPole.read(imagined), agent.plans[0].latents)  # decode shows the plan


def test_agent_runs_mcts_planner_with_a_critic():
    model = ToyCartPole()

    def upright_value(state) -> torch.Tensor:  # shaped critic (see test_mcts)
        z = state.phys
        return (1 - (z[:, 2] + 0.1 * z[:, 3]).abs() / model.theta_threshold).clamp(0, 1) / 0.03

    agent = MPCAgent(model, MCTSPlanner(model, 8, value_fn=upright_value, discount=0.97), record=True)
    env = gym.make("CartPole-v1", max_episode_steps=60)
    env.reset(seed=5)
    obs = frame_of(env)
    agent.reset(obs)
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(agent.act(obs))
        obs, done = frame_of(env), terminated or truncated
    assert truncated and not terminated and len(agent.plans) == 60
    plan = agent.plans[-1]  # principal variation, re-imagined: latents follow the plan's actions
    assert plan.plan[0] == plan.action and plan.latents.shape == (len(plan.plan), 4)
    assert agent.imagined_frames().shape == (len(plan.plan), 3, 16, 32)


def test_context_padding_and_action_alignment():
    model = SpyCartPole(context_length=3)
    agent = MPCAgent(model, CEMPlanner(model, CEMConfig(horizon=4, population=8, elites=2, iterations=1)))
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    f = [frame_of(env)]
    agent.reset(f[0])
    frames, actions = agent.context()  # first frame repeated K = 3 times, action 0 between the copies
    assert frames.shape == (1, 3, 3, 16, 32) and actions.tolist() == [[0, 0]]
    assert all((frames[0, k] == torch.from_numpy(f[0])).all() for k in range(3))
    a = [agent.act(f[0])]  # first act after reset: the same frame is not pushed twice
    assert model.contexts[-1][1].tolist() == [[0, 0]] and (model.contexts[-1][0] == frames).all()
    for _ in range(3):
        env.step(a[-1])
        f.append(frame_of(env))
        a.append(agent.act(f[-1]))
    # Protocol alignment: actions[i] was taken at frames[i] and led to frames[i + 1]; the newest frame's
    # action is the one being planned.
    frames, actions = model.contexts[-1]
    assert actions.tolist() == [[a[1], a[2]]]
    assert all((frames[0, k] == torch.from_numpy(f[k + 1])).all() for k in range(3))
    frames, actions = model.contexts[-3]  # one real step in: [f0, f0, f1], actions [pad, a0]
    assert actions.tolist() == [[0, a[0]]] and (frames[0, 2] == torch.from_numpy(f[1])).all()
    agent.reset(f[-1])  # a new episode clears the history and the planner's warm start
    assert agent.context()[1].tolist() == [[0, 0]] and agent.planner.distribution is None


def test_agent_with_continuous_actions():
    model = PointMass()
    model.context_length = 2
    agent = MPCAgent(model, CEMPlanner(model, CEMConfig(horizon=5, population=16, elites=4, iterations=2)))
    frame = np.zeros((3, 8, 8), dtype=np.uint8)
    agent.reset(frame)
    a = agent.act(frame)
    agent.act(frame)
    assert a.shape == (1,) and agent.context()[1].shape == (1, 1, 1)  # float actions [1, K-1, *shape]
    torch.testing.assert_close(agent.context()[1][0, 0], a)


def test_agent_input_errors():
    model = ToyCartPole()
    agent = MPCAgent(model, CEMPlanner(model))
    with pytest.raises(RuntimeError, match="reset"):
        agent.act()
    with pytest.raises(ValueError, match=r"transpose\(2, 0, 1\)"):
        agent.reset(np.zeros((16, 32, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        agent.reset(np.zeros((3, 16, 32), dtype=np.float32))
    agent.reset(np.zeros((3, 16, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="frame shape changed"):
        agent.observe(np.zeros((3, 8, 8), dtype=np.uint8), 0)
