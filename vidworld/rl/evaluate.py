"""The one real-environment evaluation harness for planners, learners and baselines.

    result = evaluate_policy(RandomPolicy(), PixelEnvConfig(id="CartPole-v1"), episodes=10, seed=1000)
    result.mean, result.std, result.returns         # every return vidworld reports comes from here

A policy has `reset(obs, seed)` and `act(obs) -> action` (obs: the real env's uint8 frame [H, W, 3]);
episode i runs with env seed `seed + i`, which the policy also receives to seed its own randomness, so two
policies evaluated with the same seed face the same initial states and every run is reproducible.
A `BatchPolicy` (`start(episode, obs, seed)`, `act_many({episode: obs}) -> {episode: action}`, and its
`observation`: "pixels" for frames or "state" for the env's info["state"]) plays all episodes in lockstep,
one batched call per step (MuZero's search over all roots); seeds and returns mean the same thing.
Optionally one episode is recorded as a video (a policy may add its own panel beside the real frame by
returning it from `frame_panel()`, called only while that episode is recorded: `PlannerPolicy` shows the
MPC agent's imagined future there, which is the video `vidworld plan` saves).
Users: `vidworld plan` (planning/run.py: the planner and its random reference), the online loop's evaluations.
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


@runtime_checkable
class BatchPolicy(Protocol):
    observation: str  # "pixels": act on frames uint8 [H, W, 3]; "state": on info["state"] float32 [d]

    def start(self, episode: int, obs: np.ndarray, seed: int) -> None:
        """Episode `episode` (0-based within this evaluation) starts at observation `obs`."""

    def act_many(self, obs: dict[int, np.ndarray]) -> dict[int, Any]:
        """The current observation of every running episode -> its action."""


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


def evaluate_policy(policy: Policy | BatchPolicy, env_cfg: PixelEnvConfig, episodes: int, seed: int,
                    video_path: Path | None = None, progress: bool = False, desc: str = "evaluate") -> EvalResult:
    """Run `episodes` real episodes (env seeds seed, seed+1, ...); record episode 0 to `video_path` (.mp4 and
    .gif) if given. Returns per-episode returns and lengths and the mean time per decision."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if isinstance(policy, BatchPolicy):
        return _evaluate_lockstep(policy, env_cfg, episodes, seed, video_path, progress, desc)
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
    video = _write_video(video_path, frames)
    return EvalResult(tuple(rets), tuple(lens), act_time / max(decisions, 1), video,
                      tuple(range(seed, seed + episodes)))


def _write_video(video_path: Path | None, frames: list[np.ndarray]) -> str | None:
    if video_path is None or not frames:
        return None
    from vidworld.data.video import write_gif, write_mp4

    write_mp4(video_path.with_suffix(".mp4"), np.stack(frames), fps=15)
    write_gif(video_path.with_suffix(".gif"), np.stack(frames[:200]), fps=15)
    return str(video_path.with_suffix(".mp4"))


def _evaluate_lockstep(policy: BatchPolicy, env_cfg: PixelEnvConfig, episodes: int, seed: int,
                       video_path: Path | None, progress: bool, desc: str) -> EvalResult:
    """All episodes at once, one `act_many` per step; seconds_per_action = time in act_many / decisions."""
    from vidworld.rl.policies import observation_of

    envs = [make_pixel_env(env_cfg, seed=seed + i) for i in range(episodes)]
    current: dict[int, tuple[np.ndarray, dict]] = {}
    rets, lens = [0.0] * episodes, [0] * episodes
    act_time, decisions, frames = 0.0, 0, []
    bar = tqdm(total=episodes, desc=desc, disable=not progress, leave=False)
    try:
        for i, env in enumerate(envs):
            current[i] = env.reset(seed=seed + i)
            policy.start(i, observation_of(policy.observation, *current[i]), seed + i)
        while current:
            t0 = time.perf_counter()
            actions = policy.act_many({i: observation_of(policy.observation, *current[i]) for i in sorted(current)})
            act_time += time.perf_counter() - t0
            decisions += len(current)
            for i in sorted(current):
                if video_path is not None and i == 0:
                    frames.append(_video_frame(current[i][0], policy))
                obs, r, term, trunc, info = envs[i].step(actions[i])
                rets[i], lens[i] = rets[i] + float(r), lens[i] + 1
                current[i] = (obs, info)
                if term or trunc:
                    del current[i]
                    bar.update(1)
    finally:
        bar.close()
        for env in envs:
            env.close()
    return EvalResult(tuple(rets), tuple(lens), act_time / max(decisions, 1), _write_video(video_path, frames),
                      tuple(range(seed, seed + episodes)))


def _video_frame(obs: np.ndarray, policy: Any, upscale: int = 3) -> np.ndarray:
    tiles = [obs]
    if isinstance(policy, RecordsPanel):
        sep = np.full((obs.shape[0], 2, 3), 255, np.uint8)
        tiles += [sep, policy.frame_panel(obs)]
    row = np.concatenate(tiles, axis=1)
    return row.repeat(upscale, 0).repeat(upscale, 1)
