"""Shared test fixtures: the committed fixture dataset and small synthetic episodes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

# pygame (gymnasium classic-control rendering) needs no display; set before any env is imported.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

REPO = Path(__file__).resolve().parents[1]
FIXTURE_DIR = REPO / "data" / "fixture"


@pytest.fixture
def fixture_dir() -> Path:
    """data/fixture (read-only: copy it to tmp_path before writing)."""
    return FIXTURE_DIR


@pytest.fixture
def cartpole_fixture() -> Path:
    """data/fixture/cartpole: 6 random-policy CartPole-v1 episodes, 150 steps, 64x64 (see data/README.md)."""
    return FIXTURE_DIR / "cartpole"


def _synthetic_episode(n: int, size: int = 16, seed: int = 0, n_actions: int = 3) -> dict:
    """An episode of n transitions: a square that moves with the action over a noisy background.

    Returns dict(frames uint8 [n+1, size, size, 3], actions int64 [n], rewards float32 [n],
    terminated bool [n], truncated bool [n], state float32 [n+1, 2]).
    """
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, n_actions, n)
    pos = np.concatenate([[size // 2], size // 2 + np.cumsum(actions - 1)]) % (size - 3)
    frames = rng.integers(0, 60, (n + 1, size, size, 3), dtype=np.uint8)
    for t, p in enumerate(pos):
        frames[t, 2:5, p : p + 3] = (250, 40, 90)
    terminated = np.zeros(n, bool)
    terminated[-1] = True
    return {"frames": frames, "actions": actions, "rewards": rng.normal(size=n).astype(np.float32),
            "terminated": terminated, "truncated": np.zeros(n, bool),
            "state": np.stack([pos, np.arange(n + 1)], 1).astype(np.float32)}


@pytest.fixture
def synthetic_episode() -> Callable[..., dict]:
    """Factory: synthetic_episode(n, size=16, seed=0, n_actions=3) -> dict of episode arrays."""
    return _synthetic_episode


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run tiny tensors: with 2 threads (and a busy neighbour) OpenMP sync dominates and a suite takes
    10x longer. Speed is measured in bench/, not here."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
