"""MuZero self-play in the real env: `num_envs` episodes stepped in lockstep, one batched search over all
their roots per step (the shared MCTS through `planning.mcts_planner.mcts_policy`), Dirichlet root noise and
visit-count temperature, recording per step the visit distribution and the root value (the learner's
policy targets and priorities).

Deterministic for a given network and `first_index`: episode j of the call runs with env seed
`seed_fn(first_index + j)`, episodes are started in index order as envs free up, and all search noise comes
from one generator seeded by the caller. So a resumed loop re-collects exactly what was lost.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm

from vidworld.rl.policies import MuZeroPolicy, observation_of
from vidworld.rl.replay import RealEpisode


def self_play(envs: list, policy: MuZeroPolicy, steps: int, first_index: int, seed_fn: Callable[[int], int],
              progress: bool = False) -> tuple[list[RealEpisode], list[tuple[np.ndarray, np.ndarray]]]:
    """Whole episodes until >= `steps` real steps (counting the running ones when deciding to start another).
    Returns the episodes in index order and, per episode, (visit distributions [N, A], root values [N])."""
    running: dict[int, dict] = {}  # episode index -> its record and env
    finished: dict[int, RealEpisode] = {}
    total, next_j = 0, 0
    free = list(range(len(envs)))
    bar = tqdm(total=steps, desc="self-play", disable=not progress, leave=False)

    def start(slot: int) -> None:
        nonlocal next_j
        j, next_j = next_j, next_j + 1
        obs, info = envs[slot].reset(seed=seed_fn(first_index + j))
        running[j] = {"slot": slot, "frames": [obs], "states": [info.get("state")], "acts": [], "rews": [],
                      "terms": [], "truncs": [], "obs": obs, "info": info}
        policy.start(j, observation_of(policy.observation, obs, info))

    while free and total < steps:
        start(free.pop(0))
    while running:
        order = sorted(running)
        actions = policy.act_many({j: observation_of(policy.observation, running[j]["obs"], running[j]["info"])
                                   for j in order})
        for j in order:
            rec = running[j]
            obs, r, term, trunc, info = envs[rec["slot"]].step(actions[j])
            rec["frames"].append(obs)
            rec["states"].append(info.get("state"))
            rec["acts"].append(int(actions[j]))
            rec["rews"].append(float(r))
            rec["terms"].append(bool(term))
            rec["truncs"].append(bool(trunc))
            rec["obs"], rec["info"] = obs, info
            total += 1
            bar.update(1)
            if term or trunc:
                states = rec["states"]
                state = None if any(s is None for s in states) else np.stack(states).astype(np.float32)
                finished[j] = RealEpisode(np.stack(rec["frames"]), np.asarray(rec["acts"]),
                                          np.asarray(rec["rews"], np.float32), np.asarray(rec["terms"]),
                                          np.asarray(rec["truncs"]), state)
                del running[j]
                if total < steps:
                    start(rec["slot"])
    bar.close()
    order = sorted(finished)
    return [finished[j] for j in order], [policy.search_record(j) for j in order]
