"""Planner acting speed, one episode at a time vs episodes in lockstep (`dream.planner_envs`), through the shared
evaluation harness on the same real episodes (env seeds from 100000) with the same planner settings.

    python bench/planner_lockstep.py --model runs/dream_cartpole_delta/model [--episodes 8] [--envs 1 4 8]
        [--max-episode-steps 100] [plan.cem.population=16 plan.cem.iterations=1 ...]

Per row: real-env decisions/s inside the policy (the harness's time per action), the imagined transitions per
decision (CountingModel) and the return; the ratio is against the sequential row measured in the same run
(the machine is shared and noisy: compare rows of one run only). `--envs 1` is PlannerPolicy (MPCAgent), E > 1
LockstepPlannerPolicy over E episodes at once (each env's episodes in turn when --episodes > E).
"""

from __future__ import annotations

import argparse
import json

import torch

from vidworld.config import from_dict
from vidworld.planning.config import PlanConfig
from vidworld.planning.run import env_config_for, make_planner
from vidworld.rl.evaluate import evaluate_policy
from vidworld.rl.policies import LockstepPlannerPolicy, PlannerPolicy
from vidworld.world_models import load_world_model
from vidworld.world_models.counting import CountingModel


def plan_config(overrides: list[str]) -> PlanConfig:
    """plan.* overrides (key=value, values parsed as YAML scalars) over the dream loop's cheap CEM."""
    import yaml

    cem = {"horizon": 8, "population": 16, "elites": 4, "iterations": 1, "discount": 0.95}
    top: dict = {}
    for item in overrides:
        key, _, value = item.partition("=")
        parts = key.removeprefix("plan.").split(".")
        (cem if parts[0] == "cem" else top)[parts[-1]] = yaml.safe_load(value)
    return from_dict(PlanConfig, {**top, "cem": cem})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--envs", type=int, nargs="+", default=[1, 8])
    p.add_argument("--max-episode-steps", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load_world_model(args.model)
    cfg = plan_config(args.overrides)
    env_cfg = env_config_for(model, args.max_episode_steps)
    print("| episodes at once | decisions/s | ratio | imagined transitions / decision | return mean |")
    print("|---|---|---|---|---|")
    rows, base = [], None
    for E in args.envs:
        counting = CountingModel(model)
        planner = make_planner(counting, cfg)
        res, decisions = None, 0
        if E == 1:
            res = [evaluate_policy(PlannerPolicy(counting, planner, cfg.precision), env_cfg, args.episodes, 100_000)]
        else:  # groups of E episodes (seeds continue across groups)
            res = [evaluate_policy(LockstepPlannerPolicy(counting, planner, cfg.precision), env_cfg,
                                   min(E, args.episodes - k), 100_000 + k) for k in range(0, args.episodes, E)]
        decisions = sum(sum(r.lengths) for r in res)
        seconds = sum(r.seconds_per_action * sum(r.lengths) for r in res)
        rate = decisions / seconds
        base = base or rate
        rets = [x for r in res for x in r.returns]
        row = {"envs": E, "decisions_per_s": rate, "ratio": rate / base,
               "transitions_per_decision": counting.transitions / decisions, "return_mean": sum(rets) / len(rets)}
        rows.append(row)
        print(f"| {E} | {rate:.1f} | {rate / base:.2f}x | {row['transitions_per_decision']:.0f} | "
              f"{row['return_mean']:.1f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
