"""Acting speed of a dream run's learned actor in the real env (issue 10: >= 200 real-env decisions/s at batch 1
on 2 cores), through the shared evaluation harness (rl/evaluate.py), greedy, env seeds from 100000.

    python bench/acting.py runs/dream_cartpole [--episodes 5] [--threads 1 2]

The run's world model is the one of its last checkpointed iteration (loaded from the run's own stage
checkpoints: do not run this beside a live `vidworld dream` of the same run_dir). Per thread count it prints
decisions/s of the actor as the loop acts (features only: no pixel anchor; time inside `policy.act`, as the
harness reports it) and end to end (real env step + render + decision, wall clock over whole episodes); and,
measured in the same run as references, the actor on the anchored model (one extra VAE decode per real frame,
how acting ran before) and the random policy end to end (the env's own cost: the ceiling of any policy here).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vidworld.data.store import EpisodeStore
from vidworld.envs.pixels import PixelEnvConfig
from vidworld.experiment import load_experiment
from vidworld.protocol import ActionSpec
from vidworld.rl.evaluate import RandomPolicy, evaluate_policy
from vidworld.rl.online import load_state, make_agent
from vidworld.rl.policies import ActorPolicy
from vidworld.rl.replay import Replay
from vidworld.world_models.registry import online_learner


def load_run(run: Path):
    """(cfg, world model, actor-critic) of a dream run's last checkpointed iteration."""
    cfg = load_experiment(run / "config.yaml", [])
    state, agent_state = load_state(run)
    if state.iteration == 0 or agent_state is None:
        raise SystemExit(f"{run}: no finished iteration with an actor to load")
    store = EpisodeStore.open(run / "replay")
    replay = Replay.of_store(store)
    n = len(state.episodes)  # episodes after the checkpoint are not the checkpoint's
    replay.frames, replay.actions = replay.frames[:n], replay.actions[:n]
    replay.rewards, replay.terminated = replay.rewards[:n], replay.terminated[:n]
    spec = ActionSpec(kind="discrete", n=int(store.manifest["action_space"]["n"]))
    meta = {"env_id": cfg.collect.env.id, "dataset": str(run / "replay"), "fps": 15.0, "val_fraction": 0.0,
            "split_seed": 0}
    learner = online_learner(cfg.model.kind)(cfg, run / "world_model", spec, meta)
    model = learner.update(replay.episodes(), state.iteration * cfg.dream.model_updates, progress=False)
    agent = make_agent(cfg, model.feature_dim, spec)
    agent.load_state_dict(agent_state)
    return cfg, model, agent, state


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    cfg, model, agent, state = load_run(Path(args.run_dir))
    env_cfg = PixelEnvConfig(**{**cfg.collect.env.__dict__, "max_episode_steps": cfg.dream.max_episode_steps})
    print(f"{args.run_dir}: iteration {state.iteration}, {state.real_steps} real steps")
    print("| threads | actor decisions/s | anchored actor decisions/s | actor steps/s end to end | "
          "random policy steps/s end to end | actor / random end to end |")
    print("|---|---|---|---|---|---|")
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        policies = {"actor": ActorPolicy(model, agent, greedy=True)}
        anchored = ActorPolicy(model, agent, greedy=True)
        anchored.tracker.model = model  # the model itself: init/observe decode the anchor frame
        policies["anchored"], policies["random"] = anchored, RandomPolicy()
        res, wall = {}, {}
        for k, pol in policies.items():
            t0 = time.perf_counter()
            res[k] = evaluate_policy(pol, env_cfg, args.episodes, 100_000)
            wall[k] = sum(res[k].lengths) / (time.perf_counter() - t0)
        row = {"threads": threads, **{f"{k}_decisions_per_s": r.decisions_per_s for k, r in res.items()},
               **{f"{k}_steps_per_s_end_to_end": v for k, v in wall.items()},
               "actor_return": res["actor"].mean, "actor_steps": sum(res["actor"].lengths)}
        rows.append(row)
        print(f"| {threads} | {row['actor_decisions_per_s']:.0f} | {row['anchored_decisions_per_s']:.0f} | "
              f"{wall['actor']:.0f} | {wall['random']:.0f} | {wall['actor'] / wall['random']:.3f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
