"""Fixtures of the data-layer tests: small native stores to damage."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import pytest

from vidworld.data.store import EpisodeStore


@pytest.fixture
def make_store(tmp_path, synthetic_episode) -> Callable[..., EpisodeStore]:
    """make_store(lengths=(5, 8, 11), n_actions=3, name="ds"): a native store of synthetic 16x16 episodes."""

    def make(lengths=(5, 8, 11), n_actions: int = 3, name: str = "ds") -> EpisodeStore:
        store = EpisodeStore.create(tmp_path / name, "Toy-v0", 16, 15, gym.spaces.Discrete(n_actions))
        for i, n in enumerate(lengths):
            ep = synthetic_episode(n, seed=i, n_actions=n_actions)
            store.append(ep["frames"], ep["actions"], ep["rewards"], ep["terminated"], ep["truncated"],
                         state=ep["state"])
        return store

    return make

