"""Pixel wrapper over real gymnasium envs: shapes, state, frame skip, env checker, errors."""

from __future__ import annotations

import os
import warnings
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env, resize_frame


def _check(env: gym.Env) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "env differs from its unwrapped version" is expected for a wrapper
        check_env(env, skip_render_check=True)


def test_cartpole_frames_state_and_actions():
    env = make_pixel_env(PixelEnvConfig(id="CartPole-v1", frame_size=32), seed=3)
    assert env.observation_space == gym.spaces.Box(0, 255, (32, 32, 3), np.uint8)
    assert env.action_space == gym.spaces.Discrete(2)
    obs, info = env.reset()
    assert obs.shape == (32, 32, 3) and obs.dtype == np.uint8 and obs in env.observation_space
    np.testing.assert_allclose(info["state"], env.unwrapped.state, rtol=1e-6)
    assert info["state"].dtype == np.float32
    # The seed given to make_pixel_env is used by the first reset: same start as an explicit seed.
    _, info2 = make_pixel_env(PixelEnvConfig(frame_size=32)).reset(seed=3)
    np.testing.assert_array_equal(info["state"], info2["state"])
    frames = [obs]
    for _ in range(5):
        obs, _, _, _, info = env.step(1)
        frames.append(obs)
        np.testing.assert_allclose(info["state"], env.unwrapped.state, rtol=1e-6)
    # Pushing right moves the cart: the frames change and are not blank.
    assert not np.array_equal(frames[0], frames[-1])
    assert frames[0].std() > 10


def test_frame_skip_repeats_action_and_sums_rewards():
    plain = make_pixel_env(PixelEnvConfig(frame_size=16))
    skip = make_pixel_env(PixelEnvConfig(frame_size=16, frame_skip=3))
    plain.reset(seed=0)
    skip.reset(seed=0)
    for _ in range(3):
        plain.step(0)
    obs, reward, term, _, _ = skip.step(0)
    assert reward == 3.0 and not term
    np.testing.assert_array_equal(skip.unwrapped.state, plain.unwrapped.state)
    np.testing.assert_array_equal(obs, plain._frame())


def test_frame_skip_stops_at_episode_end():
    env = make_pixel_env(PixelEnvConfig(frame_size=16, frame_skip=50))
    env.reset(seed=0)
    _, reward, term, _, _ = env.step(1)  # always pushing right falls well before 50 steps
    assert term and 1 <= reward < 50


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MiniGrid-Empty-8x8-v0", "ALE/Pong-v5"])
def test_env_checker_passes(env_id):
    _check(make_pixel_env(PixelEnvConfig(id=env_id, frame_size=16)))


def test_minigrid_full_grid_image_and_agent_state():
    env = make_pixel_env(PixelEnvConfig(id="MiniGrid-Empty-8x8-v0", frame_size=64))
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3)
    # 8x8 grid at tile 8 is exactly 64 px: the frame is the grid image itself, no resampling.
    base = env.unwrapped
    np.testing.assert_array_equal(obs, base.get_frame(highlight=base.highlight, tile_size=8))
    np.testing.assert_array_equal(info["state"], [*base.agent_pos, base.agent_dir])
    _, _, _, _, info = env.step(2)  # forward
    np.testing.assert_array_equal(info["state"], [*base.agent_pos, base.agent_dir])


def test_ale_keeps_its_own_frameskip_unless_overridden():
    env = make_pixel_env(PixelEnvConfig(id="ALE/Breakout-v5", frame_size=16))
    assert env.unwrapped._frameskip == 4 and env.frame_skip == 1
    env2 = make_pixel_env(PixelEnvConfig(id="ALE/Breakout-v5", frame_size=16, frame_skip=2))
    assert env2.unwrapped._frameskip == 2 and env2.frame_skip == 1
    obs, info = env.reset(seed=0)
    assert obs.shape == (16, 16, 3) and info["state"].shape == (128,)  # RAM


def test_resize_is_antialiased():
    # A 2-px dark line in a 400x600 white frame must survive a 10x shrink as a grey column (a strided
    # subsample would drop it or keep it at full contrast depending on its position).
    frame = np.full((400, 600, 3), 255, np.uint8)
    frame[:, 301:303] = 0
    small = resize_frame(frame, 60)
    assert small.shape == (60, 60, 3)
    col = small[:, 30, 0].astype(int)
    assert 150 < col.mean() < 230 and small[:, :25].min() == 255


def test_unknown_env_id_suggests_near_matches():
    with pytest.raises(ValueError, match=r"unknown environment id 'CartPol-v1'.*CartPole-v1"):
        make_pixel_env(PixelEnvConfig(id="CartPol-v1"))
    with pytest.raises(ValueError, match=r"ALE/Breakout-v5"):
        make_pixel_env(PixelEnvConfig(id="Breakout"))


class _NoRender(gym.Env):
    metadata: ClassVar[dict] = {"render_modes": ["human"]}
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)


class _RendersNothing(gym.Env):
    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"]}
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def render(self):
        return None


@pytest.mark.filterwarnings("ignore::UserWarning")  # gymnasium's passive checker complains too, rightly
def test_env_without_rgb_rendering_is_refused():
    gym.register("VidworldTestNoRender-v0", entry_point=_NoRender)
    gym.register("VidworldTestRendersNothing-v0", entry_point=_RendersNothing)
    try:
        with pytest.raises(ValueError, match=r"'VidworldTestNoRender-v0' cannot render RGB.*\['human'\]"):
            make_pixel_env(PixelEnvConfig(id="VidworldTestNoRender-v0"))
        env = make_pixel_env(PixelEnvConfig(id="VidworldTestRendersNothing-v0"))
        with pytest.raises(ValueError, match=r"did not render an RGB array.*NoneType"):
            env.reset(seed=0)
    finally:
        gym.registry.pop("VidworldTestNoRender-v0")
        gym.registry.pop("VidworldTestRendersNothing-v0")


def test_sigterm_still_stops_a_process_that_rendered_cartpole(tmp_path):
    """pygame/SDL installs SIGINT/SIGTERM handlers that swallow the signals; vidworld turns that off."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "render_then_wait.py"
    script.write_text(
        "import os, time\n"
        "os.environ.pop('SDL_NO_SIGNAL_HANDLERS', None)\n"
        "from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env\n"
        "env = make_pixel_env(PixelEnvConfig(id='CartPole-v1', frame_size=16))\n"
        "env.reset(seed=0); env.step(0)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    env.pop("SDL_NO_SIGNAL_HANDLERS", None)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        t0 = time.time()
        proc.wait(timeout=10)
        assert time.time() - t0 < 10 and proc.returncode == -signal.SIGTERM
    finally:
        proc.kill()
