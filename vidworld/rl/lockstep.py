"""Collecting real episodes in lockstep: `len(envs)` episodes stepped together, one `policy.act_many` over all
of them per step (the harness's BatchPolicy: MuZero's batched MCTS, the MPC planner over all roots at once),
a new episode started in a freed env while the step budget is not reached.

Deterministic for a given policy and `first_index`: episode j of the call runs with env seed
`seed_fn(first_index + j)`, episodes start in index order as envs free up, and a policy that draws its noise
from one generator seeded by the caller acts the same way every time. So a resumed loop re-collects exactly
what was lost.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm

from vidworld.rl.evaluate import BatchPolicy
from vidworld.rl.policies import observation_of
from vidworld.rl.replay import RealEpisode


def collect_lockstep(envs: list, policy: BatchPolicy, steps: int, first_index: int, seed_fn: Callable[[int], int],
                     progress: bool = False, desc: str = "collect") -> list[RealEpisode]:
    """Whole episodes until >= `steps` real steps (counting the running ones when deciding to start another),
    in index order: element j is the episode the policy knew as episode j (`policy.start(j, ...)`)."""
    running: dict[int, dict] = {}  # episode index -> its record and env slot
    finished: dict[int, RealEpisode] = {}
    total, next_j = 0, 0
    free = list(range(len(envs)))
    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False)

    def start(slot: int) -> None:
        nonlocal next_j
        j, next_j = next_j, next_j + 1
        seed = seed_fn(first_index + j)
        obs, info = envs[slot].reset(seed=seed)
        running[j] = {"slot": slot, "frames": [obs], "states": [info.get("state")], "acts": [], "rews": [],
                      "terms": [], "truncs": [], "obs": obs, "info": info}
        policy.start(j, observation_of(policy.observation, obs, info), seed)

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
    return [finished[j] for j in sorted(finished)]
