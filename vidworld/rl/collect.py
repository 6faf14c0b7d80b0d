"""Collecting whole real episodes for the replay: one episode at a time with a `Policy` (`collect`), or
`len(envs)` episodes stepped in lockstep with a `BatchPolicy` (`collect_lockstep`: one `act_many` over all of
them per step, MuZero's batched MCTS or the MPC planner over all roots at once), a new episode started in a
freed env while the step budget is not reached.

Both are deterministic for a given policy and `first_index`: episode j of the call runs with env seed
`seed_fn(first_index + j)`; in lockstep episodes start in index order as envs free up, and a policy that draws
its noise from one generator seeded by the caller acts the same way every time. So a resumed loop
re-collects exactly what was lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vidworld.rl.evaluate import BatchPolicy, Policy, RandomPolicy
from vidworld.rl.policies import observation_of
from vidworld.rl.replay import RealEpisode


class _Recording:
    """One episode as it is played: frames, env states, actions, rewards, end flags."""

    def __init__(self, obs: np.ndarray, info: dict):
        self.frames, self.states = [obs], [info.get("state")]
        self.acts: list[int] = []
        self.rews: list[float] = []
        self.terms: list[bool] = []
        self.truncs: list[bool] = []
        self.obs, self.info = obs, info

    def add(self, action: Any, obs: np.ndarray, r: float, term: bool, trunc: bool, info: dict) -> bool:
        """Record one real step; True when the episode ended."""
        self.frames.append(obs)
        self.states.append(info.get("state"))
        self.acts.append(int(action))
        self.rews.append(float(r))
        self.terms.append(bool(term))
        self.truncs.append(bool(trunc))
        self.obs, self.info = obs, info
        return bool(term or trunc)

    def episode(self) -> RealEpisode:
        state = None if any(s is None for s in self.states) else np.stack(self.states).astype(np.float32)
        return RealEpisode(np.stack(self.frames), np.asarray(self.acts), np.asarray(self.rews, np.float32),
                           np.asarray(self.terms), np.asarray(self.truncs), state)


def collect(env: Any, policy: Policy, steps: int, first_index: int, seed_fn: Callable[[int], int],
            progress: bool = False) -> list[RealEpisode]:
    """Whole episodes, one at a time, until >= `steps` real steps; episode i uses seed seed_fn(first_index + i)."""
    out, total = [], 0
    bar = tqdm(total=steps, desc="collect", disable=not progress, leave=False)
    while total < steps:
        seed = seed_fn(first_index + len(out))
        obs, info = env.reset(seed=seed)
        if isinstance(policy, RandomPolicy):
            policy.bind(env)
        policy.reset(obs, seed)
        rec = _Recording(obs, info)
        done = False
        while not done:
            a = policy.act(rec.obs)
            done = rec.add(a, *env.step(a))
        out.append(rec.episode())
        total += len(rec.acts)
        bar.update(len(rec.acts))
    bar.close()
    return out


def collect_lockstep(envs: list, policy: BatchPolicy, steps: int, first_index: int, seed_fn: Callable[[int], int],
                     progress: bool = False, desc: str = "collect") -> list[RealEpisode]:
    """Whole episodes until >= `steps` real steps (counting the running ones when deciding to start another),
    in index order: element j is the episode the policy knew as episode j (`policy.start(j, ...)`)."""
    running: dict[int, tuple[int, _Recording]] = {}  # episode index -> (env slot, its recording)
    finished: dict[int, RealEpisode] = {}
    total, next_j = 0, 0
    free = list(range(len(envs)))
    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False)

    def start(slot: int) -> None:
        nonlocal next_j
        j, next_j = next_j, next_j + 1
        seed = seed_fn(first_index + j)
        obs, info = envs[slot].reset(seed=seed)
        running[j] = (slot, _Recording(obs, info))
        policy.start(j, observation_of(policy.observation, obs, info), seed)

    while free and total < steps:
        start(free.pop(0))
    while running:
        order = sorted(running)
        actions = policy.act_many({j: observation_of(policy.observation, running[j][1].obs, running[j][1].info)
                                   for j in order})
        for j in order:
            slot, rec = running[j]
            total += 1
            bar.update(1)
            if rec.add(actions[j], *envs[slot].step(actions[j])):
                finished[j] = rec.episode()
                del running[j]
                if total < steps:
                    start(slot)
    bar.close()
    return [finished[j] for j in sorted(finished)]
