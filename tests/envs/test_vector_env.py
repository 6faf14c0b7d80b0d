"""WorldModelVectorEnv: one batched model.step per vector step, NEXT_STEP autoreset, per-env truncation,
seeding, the torch-native path, and gymnasium.make_vec by id."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import vidworld.envs  # noqa: F401  (registers vidworld/WorldModel-v0)
from tests.models.tiny import FRAME, K, tiny_world_on_disk
from vidworld.data.store import EpisodeStore
from vidworld.envs.vector_env import WorldModelVectorEnv
from vidworld.protocol import StepOut

ENV_ID = "vidworld/WorldModel-v0"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    """A 16x16 CartPole dataset (collected for real) and a tiny model saved with it as its dataset."""
    return tiny_world_on_disk(tmp_path_factory.mktemp("wm_vec"))


class SpyModel:
    """Delegates to a real world model; records the batch size of every `step` call and can force
    `terminated` for given rows: terminate[call_index] = rows of THAT call's batch."""

    def __init__(self, model, terminate: dict[int, list[int]] | None = None):
        self._model, self.terminate, self.calls = model, terminate or {}, []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def step(self, state, actions, generator=None):
        new, out = self._model.step(state, actions, generator=generator)
        rows = self.terminate.get(len(self.calls), [])
        self.calls.append(int(actions.shape[0]))
        if rows:
            term = out.terminated.clone()
            term[rows] = True
            out = StepOut(out.latent, out.reward, term, out.termination_prob)
        return new, out


def test_make_vec_64_envs_steps_in_one_batched_model_call(world):
    spy = SpyModel(world.model)
    envs = gym.make_vec(ENV_ID, num_envs=64, vectorization_mode="vector_entry_point", model=spy,
                        dataset=str(world.data))
    assert isinstance(envs, WorldModelVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.max_episode_steps == 200  # the registered horizon, passed in by make_vec
    assert envs.single_observation_space == gym.spaces.Box(0, 255, (FRAME, FRAME, 3), np.uint8)
    assert envs.action_space == gym.spaces.MultiDiscrete([2] * 64)
    obs, info = envs.reset(seed=0)
    assert obs.shape == (64, FRAME, FRAME, 3) and obs in envs.observation_space
    assert info["context_episode"].shape == (64,) and info["_context_episode"].all()
    envs.action_space.seed(0)
    for _ in range(3):
        obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
        assert obs.shape == (64, FRAME, FRAME, 3) and obs.dtype == np.uint8
        assert reward.shape == (64,) and reward.dtype == np.float32
        assert terminated.dtype == truncated.dtype == np.bool_ and info["termination_prob"].shape == (64,)
    assert spy.calls == [64, 64, 64]


def test_make_vec_with_a_model_folder_uses_its_dataset_and_horizon(world):
    envs = gym.make_vec(ENV_ID, num_envs=8, model=str(world.model_dir), max_episode_steps=4)
    assert envs.max_episode_steps == 4
    obs, _ = envs.reset(seed=1)
    assert obs.shape == (8, FRAME, FRAME, 3)
    frames = envs.render()
    assert len(frames) == 8 and all(np.array_equal(f, o) for f, o in zip(frames, obs))


def test_next_step_autoreset_after_termination(world):
    spy = SpyModel(world.model, terminate={1: [2]})  # the 2nd step call ends sub-env 2
    envs = WorldModelVectorEnv(4, spy, dataset=world.data)
    envs.reset(seed=0)
    envs.step([0, 1, 0, 1])
    _, _, terminated, truncated, _ = envs.step([1, 1, 1, 1])
    assert terminated.tolist() == [False, False, True, False] and not truncated.any()
    before = envs.state.latents.clone()
    obs, reward, terminated, truncated, info = envs.step([0, 1, 1, 0])
    # Sub-env 2 was reset (its action ignored, reward 0, no flags); the others stepped in ONE call of 3.
    assert spy.calls == [4, 4, 3]
    assert reward[2] == 0.0 and not terminated[2] and not truncated[2]
    assert info["_termination_prob"].tolist() == [True, True, False, True]
    assert info["_context_episode"].tolist() == [False, False, True, False]
    episode = EpisodeStore.open(world.data).load_episode(info["context_episode"][2])
    assert np.array_equal(obs[2], episode.frames[info["context_start"][2] + K - 1])
    after = envs.state.latents
    live = [0, 1, 3]  # their windows slid by one frame; nothing else was written into them
    assert torch.equal(after[live, :-1], before[live, 1:])
    envs.step([0, 0, 0, 0])
    assert spy.calls[-1] == 4  # sub-env 2 is live again


def test_truncation_is_counted_per_sub_env(world):
    spy = SpyModel(world.model, terminate={0: [0]})
    envs = WorldModelVectorEnv(3, spy, dataset=world.data, max_episode_steps=2)
    envs.reset(seed=0)
    truncs = [envs.step([0, 0, 0])[3].tolist() for _ in range(4)]
    # Sub-env 0 terminates at step 1, resets at step 2, then truncates 2 steps later (step 4).
    assert truncs == [[False, False, False], [False, True, True], [False, False, False], [True, False, False]]
    assert spy.calls == [3, 2, 1, 3]


def test_same_seed_same_videos_other_seed_differs(world):
    envs = WorldModelVectorEnv(4, world.model, dataset=world.data)

    def run(seed: int) -> list[np.ndarray]:
        out = [envs.reset(seed=seed)[0]]
        for a in ([0, 1, 0, 1], [1, 1, 0, 0]):
            out.append(envs.step(a)[0])
        return out

    a, b, c = run(5), run(5), run(6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[-1], c[-1])


def test_step_tensor_matches_step_without_numpy(world):
    envs = WorldModelVectorEnv(3, world.model, dataset=world.data)
    obs0 = envs.reset_tensor(seed=2)
    assert obs0.dtype == torch.uint8 and obs0.shape == (3, 3, FRAME, FRAME)
    obs, reward, terminated, truncated = envs.step_tensor(torch.tensor([1, 0, 1]))
    assert isinstance(obs, torch.Tensor) and obs.shape == (3, 3, FRAME, FRAME)
    assert reward.dtype == torch.float32 and terminated.dtype == truncated.dtype == torch.bool
    np_obs0, _ = envs.reset(seed=2)
    np_obs, np_reward, *_ = envs.step(np.array([1, 0, 1]))
    assert np.array_equal(np_obs0, obs0.permute(0, 2, 3, 1).numpy())
    assert np.array_equal(np_obs, obs.permute(0, 2, 3, 1).numpy()) and np.allclose(np_reward, reward.numpy())


def test_latent_observations_and_explicit_contexts(world):
    envs = WorldModelVectorEnv(2, world.model, obs_type="latent")  # object without a dataset
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, K, FRAME, FRAME, 3), dtype=np.uint8)
    obs, info = envs.reset(seed=0, options={"context": (frames, np.zeros((2, K - 1), np.int64))})
    assert obs.shape == (2, *world.model.latent_shape) and obs.dtype == np.float32 and info == {}
    nxt = envs.step([0, 1])[0]
    assert nxt in envs.observation_space and not np.array_equal(obs, nxt)
    assert [f.shape for f in envs.render()] == [(FRAME, FRAME, 3)] * 2
    with pytest.raises(ValueError, match=r"\[2, 3, 16, 16, 3\]"):
        envs.reset(options={"context": (frames[:1], np.zeros((1, K - 1), np.int64))})


def test_errors(world):
    envs = WorldModelVectorEnv(2, world.model, dataset=world.data)
    with pytest.raises(RuntimeError, match="before reset"):
        envs.step([0, 0])
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="action 2 of sub-env 1 is out of range"):
        envs.step([0, 2])
    with pytest.raises(ValueError, match=r"shape \[2\]"):
        envs.step([0, 1, 1])
    with pytest.raises(ValueError, match="num_envs"):
        WorldModelVectorEnv(0, world.model)
