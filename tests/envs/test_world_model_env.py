"""WorldModelEnv over a tiny real DiffusionWorldModel and a tiny real dataset (16x16 CartPole episodes)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import vidworld.envs  # noqa: F401  (registers vidworld/WorldModel-v0)
from tests.models.tiny import FRAME, K, tiny_world_model, tiny_world_on_disk
from vidworld.data.store import EpisodeStore
from vidworld.envs.world_model_env import WorldModelEnv

ENV_ID = "vidworld/WorldModel-v0"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    """A 16x16 CartPole dataset (collected for real) and a tiny model saved with it as its dataset."""
    return tiny_world_on_disk(tmp_path_factory.mktemp("wm_env"))


def _context(seed: int = 0, size: int = FRAME, k: int = K, chw: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (k, 3, size, size) if chw else (k, size, size, 3), dtype=np.uint8)
    return frames, rng.integers(0, 2, k - 1)


def _rollout(env: gym.Env, seed: int, actions: list[int], options: dict | None = None) -> list[np.ndarray]:
    obs, _ = env.reset(seed=seed, options=options)
    frames = [obs]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        assert isinstance(reward, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
        assert 0.0 <= info["termination_prob"] <= 1.0
        frames.append(obs)
    return frames


def test_check_env_passes_on_env_made_by_id_with_no_warnings(world):
    env = gym.make(ENV_ID, model=str(world.model_dir), render_mode="rgb_array")
    assert isinstance(env.unwrapped, WorldModelEnv)
    assert env.spec.max_episode_steps == 200  # gymnasium's TimeLimit truncates; the raw env does not
    assert env.unwrapped.max_episode_steps is None
    assert env.observation_space == gym.spaces.Box(0, 255, (FRAME, FRAME, 3), np.uint8)
    assert env.action_space == gym.spaces.Discrete(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)  # re-creates the env through env.spec for each render mode
    assert not [str(w.message) for w in caught]
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (FRAME, FRAME, 3) and frame.dtype == np.uint8


def test_same_seed_and_actions_give_same_video_and_another_seed_does_not(world):
    env = WorldModelEnv(world.model, dataset=world.data)
    actions = [0, 1, 1, 0, 1]
    a, b = _rollout(env, 7, actions), _rollout(env, 7, actions)
    c = _rollout(env, 8, actions)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    # With the context fixed, the seed still changes the imagined frames: the sampler noise is seeded too.
    ctx = {"context": _context(1)}
    d, e = _rollout(env, 1, actions, ctx), _rollout(env, 2, actions, ctx)
    assert np.array_equal(d[0], e[0]) and not np.array_equal(d[1], e[1])


def test_reset_uses_a_real_dataset_window_and_reports_it(world):
    env = WorldModelEnv(world.model, dataset=world.data)
    obs, info = env.reset(seed=3)
    episode = EpisodeStore.open(world.data).load_episode(info["context_episode"])
    assert np.array_equal(obs, episode.frames[info["context_start"] + K - 1])  # the newest context frame
    # The context never ends on an episode's final frame (it may be terminal).
    assert info["context_start"] + K - 1 < len(episode.frames) - 1


def test_context_option_accepts_hwc_and_chw_and_is_copied(world):
    env = WorldModelEnv(world.model)  # model object without a dataset: contexts must be given
    hwc, actions = _context(2)
    chw = np.ascontiguousarray(hwc.transpose(0, 3, 1, 2))
    obs_a, info = env.reset(seed=0, options={"context": (hwc, actions)})
    assert info == {} and np.array_equal(obs_a, hwc[-1])
    step_a = env.step(1)[0]
    obs_b, _ = env.reset(seed=0, options={"context": (chw, list(actions))})
    assert np.array_equal(obs_b, obs_a) and np.array_equal(env.step(1)[0], step_a)
    hwc[-1] = 0  # the caller's array is not the observation
    assert not np.array_equal(obs_a, hwc[-1])


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (_context(size=8), "frame_size is 16"),
        (_context(k=2), "context_length is 3"),
        ((_context()[0].astype(np.float32), _context()[1]), "uint8"),
        ((_context()[0], np.array([0, 2])), "out of range"),
        ((_context()[0], np.array([0, 1, 1])), "K-1 actions"),
        ((_context()[0], np.array([0.0, 1.0])), "integer ids"),
    ],
)
def test_bad_context_raises_a_clear_error(world, context, message):
    env = WorldModelEnv(world.model)
    with pytest.raises(ValueError, match=message):
        env.reset(options={"context": context})


def test_reset_without_context_or_dataset_and_unknown_options_raise(world):
    env = WorldModelEnv(tiny_world_model())
    with pytest.raises(ValueError, match="records no dataset"):
        env.reset()
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"contex": _context()})


def test_step_before_reset_and_invalid_actions_raise(world):
    env = WorldModelEnv(world.model, dataset=world.data)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(0)
    with pytest.raises(RuntimeError, match="before reset"):
        env.render()
    env.reset(seed=0)
    for bad in (2, -1, 0.5, np.array([0, 1]), "1"):
        with pytest.raises(ValueError, match=r"action space Discrete\(2\)"):
            env.step(bad)
    env.step(np.int64(1))  # numpy integers are fine


def test_truncation_raw_and_through_gymnasium_time_limit(world):
    env = WorldModelEnv(world.model, dataset=world.data, max_episode_steps=3)
    env.reset(seed=0)
    assert [env.step(0)[3] for _ in range(3)] == [False, False, True]
    made = gym.make(ENV_ID, model=world.model, dataset=str(world.data), max_episode_steps=250)
    assert made.unwrapped.max_episode_steps is None  # so a TimeLimit longer than 200 is reachable
    made = gym.make(ENV_ID, model=world.model, dataset=str(world.data), max_episode_steps=2)
    made.reset(seed=0)
    assert [made.step(1)[3] for _ in range(2)] == [False, True]


def test_latent_observations(world):
    env = WorldModelEnv(world.model, dataset=world.data, obs_type="latent")
    assert env.observation_space.shape == world.model.latent_shape and env.observation_space.dtype == np.float32
    obs, _ = env.reset(seed=0)
    nxt = env.step(1)[0]
    assert obs in env.observation_space and nxt in env.observation_space and not np.array_equal(obs, nxt)
    frame = env.render()
    assert frame.shape == (FRAME, FRAME, 3) and frame.dtype == np.uint8


def test_missing_or_invalid_model_folder_and_mismatched_dataset(world, tmp_path, cartpole_fixture):
    with pytest.raises(FileNotFoundError, match="world model folder not found"):
        gym.make(ENV_ID, model=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a vidworld world model"):
        gym.make(ENV_ID, model=str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="64x64 frames but the model's frame_size is 16"):
        WorldModelEnv(world.model, dataset=cartpole_fixture)
    with pytest.raises(FileNotFoundError, match="no dataset"):
        WorldModelEnv(world.model, dataset=tmp_path / "no_data")
    with pytest.raises(ValueError, match="obs_type"):
        WorldModelEnv(world.model, obs_type="rgb")
