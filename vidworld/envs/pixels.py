"""Pixel observations for real gymnasium environments.

`make_pixel_env(PixelEnvConfig(id=...))` returns a gymnasium env whose observations are uint8
[frame_size, frame_size, 3] frames rendered from the real env, downscaled with area averaging
(anti-aliased; a plain stride would alias thin objects like CartPole's pole away). The action space is
the wrapped env's own, unchanged (Discrete today; Box works the same way).

Where the frames come from:
* most envs: `env.render()` with `render_mode="rgb_array"` (CartPole 400x600, ALE 210x160), squashed to
  a square (aspect ratio is not kept, as in DIAMOND/Dreamer's Atari 64x64 frames);
* MiniGrid: the fully observable grid image `unwrapped.get_frame(highlight, tile_size)` — the same call
  `minigrid.wrappers.RGBImgObsWrapper` makes — with the smallest tile size that covers `frame_size`
  (8x8 grid at 64 px: tile 8, no resize), instead of rendering at 32 px tiles and shrinking 4x.

Frame skip: ALE v5 skips frames inside the emulator (default 4, sticky actions 0.25); `frame_skip`
other than 1 is passed to it as `frameskip`. For every other env the wrapper repeats the action
`frame_skip` times, sums the rewards and stops early at the end of an episode.
`max_episode_steps` is passed to `gymnasium.make`, so it counts the base env's steps (for ALE these are
agent steps; elsewhere agent steps x frame_skip).

`info["state"]` (float32 [d]) carries a low-dimensional state when there is one: the env's own
observation if it is a flat Box (classic control; for CartPole it equals `unwrapped.state`), the 128-byte
RAM for ALE, `[x, y, direction]` of the agent for MiniGrid.

Episode replay: `reset` also puts `info["episode_start"]` (uint8 [n], a tagged byte string) for envs that
cannot be put into a recorded low-dimensional state but replay exactly from their start: ALE (the emulator
state right after the reset, *including its random generator*, so sticky actions repeat the same way:
~14 KB) and MiniGrid (the env's `np_random` state before the reset generated the grid; every later random
draw comes from it). `restore_episode_start(snapshot)` puts the env back at frame 0 of that episode; the
recorded actions then reproduce the recorded frames exactly (tests/eval/test_episode_replay.py), and any
other actions give the real counterfactual future (`vidworld.eval.episode_replay`).
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from PIL import Image

from vidworld.config import FieldError, check_field

# pygame/SDL would otherwise swallow SIGINT/SIGTERM (they become unread SDL quit events).
os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")

# id prefix -> module that registers those ids with gymnasium on import.
_LAZY_REGISTRARS = {"ALE/": "ale_py", "MiniGrid": "minigrid"}


# Frames are kept whole in memory (an episode of 500 frames at 1024 px is 1.5 GB): a larger side is a typo.
MAX_FRAME_SIZE = 1024


@dataclass
class PixelEnvConfig:
    """Which real env to render and how (see module docstring). Range-checked when built (FieldError naming
    the field; a command maps it to its flag, the config loader to the YAML key)."""

    id: str = "CartPole-v1"
    frame_size: int = 64
    frame_skip: int = 1
    max_episode_steps: int | None = None
    env_kwargs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise FieldError("id", f"must be a gymnasium env id such as 'CartPole-v1', got {self.id!r}",
                             type(self).__name__)
        check_field(self, "frame_size", ge=1, le=MAX_FRAME_SIZE)
        check_field(self, "frame_skip", ge=1)
        if self.max_episode_steps is not None:
            check_field(self, "max_episode_steps", ge=1, note="or unset for the env's own limit")


def _register(module: str) -> None:
    if module == "ale_py":
        import ale_py

        gym.register_envs(ale_py)
    elif module == "minigrid":
        import minigrid

        gym.register_envs(minigrid)


def _check_env_id(env_id: str) -> None:
    """Register lazily-registered families; raise ValueError with near matches for an unknown id."""
    for prefix, module in _LAZY_REGISTRARS.items():
        if env_id.startswith(prefix):
            _register(module)
    if env_id in gym.registry:
        return
    # Register every optional family so the suggestions can include e.g. "ALE/Breakout-v5" for "Breakout".
    for module in _LAZY_REGISTRARS.values():
        try:
            _register(module)
        except ImportError:
            pass
    ids = list(gym.registry.keys())
    close = difflib.get_close_matches(env_id, ids, n=5, cutoff=0.5)
    lowered = [i for i in ids if env_id.lower() in i.lower() and i not in close][:5]
    hint = close + lowered
    raise ValueError(
        f"unknown environment id {env_id!r}"
        + (f"; did you mean one of {hint}?" if hint else "; see gymnasium.pprint_registry() for the list")
    )


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [size, size, 3]: area averaging down (anti-aliased), bilinear up."""
    if frame.shape[0] == size and frame.shape[1] == size:
        return np.ascontiguousarray(frame)
    image = Image.fromarray(np.ascontiguousarray(frame))
    shrinking = frame.shape[0] >= size and frame.shape[1] >= size
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(image.resize((size, size), method))


class PixelObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replace an env's observation with a rendered uint8 [S, S, 3] frame (S = frame_size).

    Built by `make_pixel_env`; see the module docstring for where frames and `info["state"]` come from.
    Records its constructor args so `env.spec.make()` (used by gymnasium's env checker) rebuilds it.
    """

    def __init__(self, env: gym.Env, frame_size: int, frame_skip: int = 1):
        gym.utils.RecordConstructorArgs.__init__(self, frame_size=frame_size, frame_skip=frame_skip)
        gym.Wrapper.__init__(self, env)
        if frame_size < 1:
            raise ValueError(f"frame_size must be >= 1, got {frame_size}")
        if frame_skip < 1:
            raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
        self.frame_size = frame_size
        self.frame_skip = frame_skip
        self.observation_space = gym.spaces.Box(0, 255, (frame_size, frame_size, 3), np.uint8)
        self._raw_frame = self._frame_source()
        self._state_of = self._state_source()
        self._pending_seed: int | None = None  # used by the first reset() that gets no seed

    def _frame_source(self) -> Callable[[], Any]:
        base = self.env.unwrapped
        if hasattr(base, "get_frame") and hasattr(base, "highlight") and hasattr(base, "grid"):  # MiniGrid
            tile = max(1, math.ceil(self.frame_size / max(base.width, base.height)))
            return lambda: base.get_frame(highlight=base.highlight, tile_size=tile)
        return self.env.render

    def _state_source(self) -> Callable[[Any], np.ndarray | None]:
        base = self.env.unwrapped
        if hasattr(base, "ale"):
            return lambda obs: base.ale.getRAM().astype(np.float32)
        if hasattr(base, "agent_pos") and hasattr(base, "agent_dir"):
            return lambda obs: np.array([*base.agent_pos, base.agent_dir], dtype=np.float32)
        space = self.env.observation_space
        if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
            return lambda obs: np.asarray(obs, dtype=np.float32).copy()
        return lambda obs: None

    def _frame(self) -> np.ndarray:
        frame = self._raw_frame()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[-1] != 3:
            got = type(frame).__name__ if not isinstance(frame, np.ndarray) else f"array {frame.shape}"
            raise ValueError(
                f"environment {self.env.spec.id if self.env.spec else self.env!r} did not render an RGB "
                f"array [H, W, 3] (got {got}); it needs render_mode='rgb_array'"
            )
        return resize_frame(frame.astype(np.uint8, copy=False), self.frame_size)

    def _info(self, obs: Any, info: dict) -> dict:
        state = self._state_of(obs)
        if state is not None:
            info = {**info, "state": state}
        return info

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        base = self.env.unwrapped
        rng_start = None
        if _is_minigrid(base):  # the generator the reset below will draw the grid from
            rng = gym.utils.seeding.np_random(seed)[0] if seed is not None else base.np_random
            rng_start = rng.bit_generator.state
        obs, info = self.env.reset(seed=seed, options=options)
        info = self._info(obs, info)
        if hasattr(base, "ale"):
            info["episode_start"] = _tagged(_ALE_TAG, base.ale.cloneState(include_rng=True).serialize())
        elif rng_start is not None:
            info["episode_start"] = _tagged(_NP_RANDOM_TAG, json.dumps(rng_start).encode())
        return self._frame(), info

    def restore_episode_start(self, snapshot: np.ndarray) -> np.ndarray:
        """Put the env back at frame 0 of the episode whose reset gave `info["episode_start"]` = snapshot
        (uint8 [n]); returns that frame, uint8 [S, S, 3]. Step `self.unwrapped` (no wrapper counters) and
        call `_frame()` to follow the episode. ValueError if the snapshot is of another kind of env."""
        base = self.env.unwrapped
        tag, payload = _untagged(snapshot)
        if hasattr(base, "ale") and tag == _ALE_TAG:
            import ale_py

            # reset_game first: the state does not hold the sticky-action "previous action", which a reset sets
            # to NOOP as the collector's reset did; without it, the first step after the restore could repeat
            # whatever action the env took last (a replayed episode 1 of 12 Breakout episodes differed at frame 1)
            base.ale.reset_game()
            base.ale.restoreState(ale_py.ALEState(payload))
        elif _is_minigrid(base) and tag == _NP_RANDOM_TAG:
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = json.loads(payload)
            base.np_random = rng
            self.env.reset()  # seed None: draws the grid from the restored generator
        else:
            env_id = self.env.spec.id if self.env.spec else type(base).__name__
            raise ValueError(f"episode_start snapshot of kind {tag!r} cannot restore {env_id}; expected "
                             f"{_ALE_TAG!r} for ALE or {_NP_RANDOM_TAG!r} for MiniGrid")
        return self._frame()

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict]:
        total = 0.0
        for _ in range(self.frame_skip):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return self._frame(), total, terminated, truncated, self._info(obs, info)


# Snapshot kinds (`info["episode_start"]` = tag + b":" + payload): a snapshot restores only its own kind.
_ALE_TAG = "ale-state-v1"
_NP_RANDOM_TAG = "np-random-v1"


def _is_minigrid(base: Any) -> bool:
    return hasattr(base, "get_frame") and hasattr(base, "agent_pos") and hasattr(base, "grid")


def _tagged(tag: str, payload: bytes) -> np.ndarray:
    return np.frombuffer(tag.encode() + b":" + payload, dtype=np.uint8).copy()


def _untagged(snapshot: np.ndarray) -> tuple[str, bytes]:
    raw = np.asarray(snapshot, dtype=np.uint8).tobytes()
    tag, sep, payload = raw.partition(b":")
    if not sep or len(tag) > 32:
        raise ValueError("episode_start snapshot has no kind tag: expected bytes 'ale-state-v1:...' or "
                         "'np-random-v1:...' as written by PixelObservation.reset")
    return tag.decode(errors="replace"), payload


def make_pixel_env(cfg: PixelEnvConfig, seed: int | None = None) -> PixelObservation:
    """Build the real env `cfg.id` with uint8 [S, S, 3] observations (S = cfg.frame_size).

    Raises ValueError for an unknown id (with near matches) or an env that cannot render RGB arrays.
    If `seed` is given, the action space is seeded with it and the first `reset()` without a seed uses it,
    so later unseeded resets continue that stream deterministically.
    """
    # We only ever render offscreen (rgb_array); without a display pygame would warn about XDG_RUNTIME_DIR.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    _check_env_id(cfg.id)
    kwargs = dict(cfg.env_kwargs)
    skip = cfg.frame_skip
    if cfg.id.startswith("ALE/"):
        if skip != 1:
            kwargs.setdefault("frameskip", skip)
        skip = 1  # the emulator skips (default 4); never skip twice
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    spec = gym.registry[cfg.id]
    modes = _render_modes(spec)
    if modes is not None and "rgb_array" not in modes:
        raise ValueError(
            f"environment {cfg.id!r} cannot render RGB frames: its render modes are {modes}, "
            "vidworld needs 'rgb_array'"
        )
    try:
        env = gym.make(cfg.id, render_mode="rgb_array", **kwargs)
    except TypeError as e:
        if not cfg.env_kwargs:
            raise  # not the user's keywords: a bug, keep its traceback
        # gymnasium passes env_kwargs to the env's constructor: "got an unexpected keyword argument 'x'"
        problem = str(e).split(" was raised from")[0]
        raise ValueError(f"env_kwargs {cfg.env_kwargs} do not fit {cfg.id!r}: {problem}") from None
    wrapped = PixelObservation(env, cfg.frame_size, skip)
    if seed is not None:
        wrapped._pending_seed = seed
        wrapped.action_space.seed(seed)
    return wrapped


def _render_modes(spec: gym.envs.registration.EnvSpec) -> list[str] | None:
    """The render modes an env class declares, without building it (None if it cannot be told)."""
    entry = spec.entry_point
    try:
        creator = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
    except (ImportError, AttributeError, ValueError):  # a broken entry point is gym.make's to report
        return None
    metadata = getattr(creator, "metadata", None)
    if not isinstance(metadata, dict):
        return None
    return list(metadata.get("render_modes", []))
