"""`vidworld collect`: run a policy in a real pixel env and append its episodes to an episode store.

    vidworld collect --env CartPole-v1 --steps 20000 --policy random --out data/cartpole

`steps` counts agent steps (transitions) of this run. Episodes end on terminated/truncated; when the step
budget runs out mid-episode, that partial episode is written too, with truncated=True on its last step.
Collecting again into the same folder appends (numbering continues); opening it to append first repairs
what a killed earlier run left (data/recovery.py: unlisted finished episodes are verified and listed, temps
and unverifiable files removed, their numbers never reused). The env and the policy are seeded
once per run from (seed, number of the run's first episode): a run is reproducible, and a second run
with the same seed makes new episodes rather than copies. (Not reseeding every episode matters for ALE,
where a seeded reset reloads the ROM: ~80 ms.)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from vidworld.config import MAX_SEED, FieldError, check_field, load_config, to_dict
from vidworld.data.store import EpisodeStore
from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env
from vidworld.paths import check_output_dir


@dataclass
class CollectConfig:
    """YAML section `collect` (and `vidworld collect --config`); range-checked when built."""

    env: PixelEnvConfig = field(default_factory=PixelEnvConfig)
    steps: int = 20000
    policy: str = "random"
    seed: int = 0
    out: str = "data/cartpole"
    fps: int = 15

    def __post_init__(self) -> None:
        check_field(self, "steps", ge=1)
        check_field(self, "seed", ge=0, lt=MAX_SEED)
        check_field(self, "fps", ge=1)


@dataclass(frozen=True)
class CollectResult:
    """What one `collect` run wrote (`store` holds every episode, including earlier runs')."""

    store: EpisodeStore
    episodes: int
    steps: int
    frames: int  # steps + episodes: each episode has one more frame than actions
    seconds: float

    @property
    def frames_per_s(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


Policy = Callable[[np.ndarray], Any]


def _random_policy(space: gym.Space, seed: int) -> Policy:
    space.seed(seed)
    return lambda obs: space.sample()


# name -> factory(action_space, seed) -> policy(obs uint8 [S, S, 3]) -> action
POLICIES: dict[str, Callable[[gym.Space, int], Policy]] = {"random": _random_policy}


def _run_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def collect(cfg: CollectConfig, progress: bool = True) -> CollectResult:
    """Collect `cfg.steps` steps of `cfg.policy` in `cfg.env` into the store at `cfg.out`."""
    if cfg.policy not in POLICIES:
        raise ValueError(f"unknown policy {cfg.policy!r}; known: {sorted(POLICIES)}")
    if cfg.steps < 1:
        raise ValueError(f"steps must be >= 1, got {cfg.steps}")
    check_output_dir(cfg.out, "dataset folder")  # "" would be the current folder; or a file in the way
    env = make_pixel_env(cfg.env)  # fails on a bad env id before any folder is made
    store = EpisodeStore.open_or_create(cfg.out, cfg.env.id, cfg.env.frame_size, cfg.fps, env.action_space,
                                        meta={"collect": to_dict(cfg)})
    episodes = steps = 0
    first = store.next_index()
    start = time.perf_counter()
    bar = tqdm(total=cfg.steps, disable=not progress, unit="step", desc=f"collect {cfg.env.id}")
    # Episodes are encoded and appended on one background thread (in order), overlapping ffmpeg with
    # stepping the env; at most one episode waits, which bounds memory. Leaving the `with` block, also
    # by an exception, waits for it: every finished episode reaches the store.
    pending: Future | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidworld-collect") as writer:
        try:
            run_seed = _run_seed(cfg.seed, first)
            policy = POLICIES[cfg.policy](env.action_space, run_seed)
            reset_seed: int | None = run_seed
            while steps < cfg.steps:
                obs, info = env.reset(seed=reset_seed)
                reset_seed = None  # later resets continue the env's seeded random stream
                frames, states = [obs], [info.get("state")]
                episode_start = info.get("episode_start")  # ALE/MiniGrid: replays this episode exactly
                actions, rewards, terminated, truncated = [], [], [], []
                while steps < cfg.steps:
                    action = policy(obs)
                    obs, reward, term, trunc, info = env.step(action)
                    frames.append(obs)
                    states.append(info.get("state"))
                    actions.append(action)
                    rewards.append(reward)
                    terminated.append(term)
                    truncated.append(trunc)
                    steps += 1
                    bar.update(1)
                    if term or trunc:
                        break
                if not (terminated[-1] or truncated[-1]):
                    truncated[-1] = True  # the step budget ran out: a time limit, not a terminal state
                state = None if any(s is None for s in states) else np.stack(states)
                if pending is not None:
                    pending.result()  # re-raises a failed write here
                pending = writer.submit(
                    store.append, np.stack(frames), np.asarray(actions), np.asarray(rewards, np.float32),
                    np.asarray(terminated), np.asarray(truncated), state=state, episode_start=episode_start)
                episodes += 1
            if pending is not None:
                pending.result()
        finally:
            bar.close()
            env.close()
    return CollectResult(store, episodes, steps, steps + episodes, time.perf_counter() - start)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file with CollectConfig values (flags below override it)")
    p.add_argument("--env", help="gymnasium env id, e.g. CartPole-v1, ALE/Breakout-v5, MiniGrid-Empty-8x8-v0")
    p.add_argument("--steps", type=int, help="agent steps to collect in this run (default 20000)")
    p.add_argument("--policy", choices=sorted(POLICIES), help="behaviour policy (default random)")
    p.add_argument("--out", help="dataset folder; appended to if it exists (default data/cartpole)")
    p.add_argument("--frame-size", type=int, help="square frame side in pixels (default 64)")
    p.add_argument("--seed", type=int, help="base seed (default 0)")
    p.add_argument("--frame-skip", type=int, help="repeat each action N times (ALE: emulator frameskip)")
    p.add_argument("--max-episode-steps", type=int, help="time limit in base-env steps")
    p.add_argument("--fps", type=int, help="frame rate stored in the videos (default 15)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# config field -> the flag that sets it (errors name what the user typed)
FLAGS = {"steps": "--steps", "policy": "--policy", "out": "--out", "seed": "--seed", "fps": "--fps",
         "id": "--env", "frame_size": "--frame-size", "frame_skip": "--frame-skip",
         "max_episode_steps": "--max-episode-steps"}


def run(args: argparse.Namespace) -> int:
    cfg = load_config(CollectConfig, args.config) if args.config else CollectConfig()
    flags = {"steps": args.steps, "policy": args.policy, "out": args.out, "seed": args.seed, "fps": args.fps}
    env_flags = {"id": args.env, "frame_size": args.frame_size, "frame_skip": args.frame_skip,
                 "max_episode_steps": args.max_episode_steps}
    try:  # rebuilt (not setattr) so each dataclass range-checks the flag values
        env = replace(cfg.env, **{k: v for k, v in env_flags.items() if v is not None})
        cfg = replace(cfg, env=env, **{k: v for k, v in flags.items() if v is not None})
    except FieldError as e:
        given = {**flags, **env_flags}.get(e.field)
        if given is None:  # the value came from --config
            raise ValueError(f"--config {args.config}: {e}") from None
        raise ValueError(f"{FLAGS[e.field]} {given!r}: {e.problem}" if isinstance(given, str)
                         else f"{FLAGS[e.field]} {given}: {e.problem}") from None
    from_config = args.out is None and args.config
    check_output_dir(cfg.out, f"--config {args.config}: out" if from_config else "--out")
    result = collect(cfg, progress=not args.no_progress)
    print(f"collected {result.episodes} episodes, {result.frames} frames ({result.steps} steps) of "
          f"{cfg.env.id} in {result.seconds:.1f} s: {result.frames_per_s:.0f} frames/s -> {cfg.out} "
          f"(now {len(result.store)} episodes)")
    return 0
