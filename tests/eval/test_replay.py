"""StateReplay: the real env put into a recorded state reproduces the recorded frames; a state of another env
is refused by name (Acrobot's recorded states used to crash every eval-wm on an Acrobot dataset)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidworld.data.collect import CollectConfig, collect
from vidworld.envs.pixels import PixelEnvConfig
from vidworld.eval.replay import StateReplay, simulator_state, supports_replay


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1"])
def test_replay_from_a_recorded_state_reproduces_the_recorded_frames(tmp_path, env_id):
    env = PixelEnvConfig(env_id, frame_size=16)
    store = collect(CollectConfig(env=env, steps=12, out=str(tmp_path / "d"), seed=0), progress=False).store
    ep = store.load_episode(0)
    start, H = 2, 6
    replay = StateReplay(env)
    frames = replay(torch.from_numpy(ep.arrays.state[start])[None],
                    torch.from_numpy(np.asarray(ep.arrays.actions[start : start + H]))[None])[0]
    replay.close()
    recorded = torch.from_numpy(ep.frames[start + 1 : start + 1 + H]).permute(0, 3, 1, 2)
    # float32 recorded states: an edge pixel may round differently, nothing more
    assert (frames.float() - recorded.float()).abs().mean() < 1.0


def test_a_state_of_another_env_is_refused_by_name():
    acrobot_obs = np.zeros(6, np.float32)
    with pytest.raises(ValueError, match="6 numbers does not fit CartPole-v1, which records 4"):
        simulator_state("CartPole-v1", acrobot_obs)
    replay = StateReplay(PixelEnvConfig("CartPole-v1", frame_size=16))
    with pytest.raises(ValueError, match="does not fit CartPole-v1"):
        replay(torch.zeros(1, 6), torch.zeros(1, 2, dtype=torch.long))
    replay.close()


def test_continuous_action_envs_are_not_replayed():
    assert supports_replay("CartPole-v1") and supports_replay("Acrobot-v1")
    assert not supports_replay("Pendulum-v1") and not supports_replay("ALE/Breakout-v5")


def test_an_action_the_env_does_not_have_is_refused_by_name():
    replay = StateReplay(PixelEnvConfig("CartPole-v1", frame_size=16))
    with pytest.raises(ValueError, match=r"replaying CartPole-v1: actions span 0..2, the env takes 0..1"):
        replay(torch.zeros(1, 4), torch.tensor([[0, 2]]))  # was gymnasium's AssertionError "2 (<class 'int'>) invalid"
    replay.close()
