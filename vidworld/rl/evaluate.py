"""The one real-environment evaluation harness for planners, learners and baselines.

    result = evaluate_policy(RandomPolicy(), PixelEnvConfig(id="CartPole-v1"), episodes=10, seed=1000)
    result.mean, result.std, result.returns         # every return vidworld reports comes from here

A policy has `reset(obs, seed)` and `act(obs) -> action` (obs: the real env's uint8 frame [H, W, 3]);
episode i runs with env seed `seed + i`, which the policy also receives to seed its own randomness, so two
policies evaluated with the same seed face the same initial states and every run is reproducible.
Optionally one episode is recorded as a video (a policy may add its own panel beside the real frame by
returning it from `frame_panel()`; the MPC agent shows its imagined future there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env


@runtime_checkable
class Policy(Protocol):
    def reset(self, obs: np.ndarray, seed: int) -> None:
        """A new episode starts at real frame `obs` uint8 [H, W, 3]; `seed` is the episode's env seed."""

    def act(self, obs: np.ndarray) -> Any:
        """The action to take at real frame `obs` (the current one)."""


@runtime_checkable
class RecordsPanel(Protocol):
    def frame_panel(self, obs: np.ndarray) -> np.ndarray:
        """uint8 [H, W', 3]: what to show beside the real frame in the evaluation video after `act(obs)`."""


class RandomPolicy:
    """Uniform random actions from the env's own action space, seeded per episode (the reference)."""

    def __init__(self, action_space: Any = None):
        self.space = action_space

    def bind(self, env: Any) -> None:
        """Sample from this env's action space (the harness calls it)."""
        self.space = env.action_space

    def reset(self, obs: np.ndarray, seed: int) -> None:
        self.space.seed(seed)

    def act(self, obs: np.ndarray) -> Any:
        return self.space.sample()


@dataclass(frozen=True)
class EvalResult:
    returns: tuple[float, ...]
    lengths: tuple[int, ...]
    seconds_per_action: float  # time inside policy.act
    video: str | None = None
    seeds: tuple[int, ...] = field(default=())

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    @property
    def decisions_per_s(self) -> float:
        return 1.0 / max(self.seconds_per_action, 1e-12)

    def as_dict(self) -> dict:
        return {"return_mean": self.mean, "return_std": self.std, "returns": list(self.returns),
                "lengths": list(self.lengths), "seeds": list(self.seeds),
                "seconds_per_action": self.seconds_per_action, "video": self.video}


def evaluate_policy(policy: Policy, env_cfg: PixelEnvConfig, episodes: int, seed: int,
                    video_path: Path | None = None, progress: bool = False, desc: str = "evaluate") -> EvalResult:
    """Run `episodes` real episodes (env seeds seed, seed+1, ...); record episode 0 to `video_path` (.mp4 and
    .gif) if given. Returns per-episode returns and lengths and the mean time per decision."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = make_pixel_env(env_cfg, seed=seed)
    rets, lens, act_time, decisions = [], [], 0.0, 0
    frames: list[np.ndarray] = []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            if isinstance(policy, RandomPolicy):
                policy.bind(env)
            policy.reset(obs, seed + i)
            total, n, done = 0.0, 0, False
            bar = tqdm(total=env_cfg.max_episode_steps, desc=f"{desc} {i + 1}/{episodes}", disable=not progress,
                       leave=False)
            while not done:
                t0 = time.perf_counter()
                action = policy.act(obs)
                act_time += time.perf_counter() - t0
                decisions += 1
                if video_path is not None and i == 0:
                    frames.append(_video_frame(obs, policy))
                obs, r, term, trunc, _ = env.step(action)
                total, n, done = total + float(r), n + 1, bool(term or trunc)
                bar.update(1)
            bar.close()
            rets.append(total)
            lens.append(n)
    finally:
        env.close()
    video = None
    if video_path is not None and frames:
        from vidworld.data.video import write_gif, write_mp4

        write_mp4(video_path.with_suffix(".mp4"), np.stack(frames), fps=15)
        write_gif(video_path.with_suffix(".gif"), np.stack(frames[:200]), fps=15)
        video = str(video_path.with_suffix(".mp4"))
    return EvalResult(tuple(rets), tuple(lens), act_time / max(decisions, 1), video,
                      tuple(range(seed, seed + episodes)))


def _video_frame(obs: np.ndarray, policy: Any, upscale: int = 3) -> np.ndarray:
    tiles = [obs]
    if isinstance(policy, RecordsPanel):
        sep = np.full((obs.shape[0], 2, 3), 255, np.uint8)
        tiles += [sep, policy.frame_panel(obs)]
    row = np.concatenate(tiles, axis=1)
    return row.repeat(upscale, 0).repeat(upscale, 1)
