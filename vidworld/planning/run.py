"""`vidworld plan --model DIR`: act in the REAL env by planning in the world model; report returns.

Prints returns (mean ± std over episodes), planning time per action and imagined transitions per second
inside the planner, next to a random policy on the same env, and saves a video of one episode with the
planner's imagined best future beside the real frame.

Both policies run through the one evaluation harness (`rl/evaluate.py`'s `evaluate_policy`, env seeds seed,
seed+1, ...): the random reference as `RandomPolicy`, the planner as `rl/policies.py`'s `PlannerPolicy`, whose
`frame_panel` supplies the imagined frames of the video. This module only adds what is particular to planning:
the planner chosen by `plan.*`, a `CountingModel` for imagined transitions, and plan.json / plan.md.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from vidworld.atomic import atomic_write_text
from vidworld.config import FieldError
from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env
from vidworld.planning.cem import CEMPlanner
from vidworld.planning.config import PlanConfig
from vidworld.planning.mcts_planner import MCTSPlanner
from vidworld.paths import check_input_dir, check_output_dir
from vidworld.precision import PRECISIONS, resolve_precision
from vidworld.protocol import value_function
from vidworld.rl.evaluate import EvalResult, RandomPolicy, evaluate_policy
from vidworld.rl.policies import PlannerPolicy
from vidworld.world_models.compat import check_env
from vidworld.world_models.counting import CountingModel, unwrap


@dataclass(frozen=True)
class EpisodeStats:
    """Per-episode returns and lengths as plan.json stores them (`planned` / `random`)."""

    returns: tuple[float, ...]
    lengths: tuple[int, ...]

    @classmethod
    def of(cls, result: EvalResult) -> EpisodeStats:
        return cls(result.returns, result.lengths)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


@dataclass(frozen=True)
class PlanReport:
    planner: str
    planned: EpisodeStats
    random: EpisodeStats
    seconds_per_action: float
    decisions_per_s: float
    imagined_transitions_per_s: float
    transitions_per_decision: float
    precision: str
    video: str | None

    def table(self) -> str:
        r, p = self.random, self.planned
        return "\n".join([
            "| policy | episodes | return mean ± std | min | max |",
            "|---|---|---|---|---|",
            f"| random | {len(r.returns)} | {r.mean:.1f} ± {r.std:.1f} | {min(r.returns):.0f} | {max(r.returns):.0f} |",
            f"| {self.planner} in world model | {len(p.returns)} | {p.mean:.1f} ± {p.std:.1f} | "
            f"{min(p.returns):.0f} | {max(p.returns):.0f} |",
            "",
            f"planner/random return: {p.mean / max(r.mean, 1e-9):.1f}x; {self.seconds_per_action * 1000:.0f} ms per "
            f"action ({self.decisions_per_s:.2f} decisions/s), {self.imagined_transitions_per_s:.0f} imagined "
            f"transitions/s ({self.transitions_per_decision:.0f} per decision, {self.precision})",
        ])


def env_config_for(model, max_episode_steps: int) -> PixelEnvConfig:
    env_id = model.meta.get("env_id")
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"the model does not record the env it was trained on (world_model.json meta.env_id is "
                         f"{env_id!r}; expected a gymnasium id such as 'CartPole-v1')")
    return PixelEnvConfig(id=env_id, frame_size=model.frame_size, max_episode_steps=max_episode_steps)


def check_env_matches(model, env_cfg: PixelEnvConfig) -> None:
    """The real env must take the model's actions and give its frame size, else planning is meaningless."""
    env = make_pixel_env(env_cfg, seed=0)
    try:
        check_env(model, env_cfg.id, env.action_space, env.observation_space.shape)
    finally:
        env.close()


def make_planner(model, cfg: PlanConfig):
    """The planner `cfg.planner` names over `model` (a world model, or a CountingModel around one)."""
    value_fn = value_function(unwrap(model)) if cfg.use_value else None
    if cfg.planner in ("cem", "mppi"):
        return CEMPlanner(model, replace(cfg.cem, mode=cfg.planner), value_fn=value_fn)
    if cfg.planner == "mcts":
        return MCTSPlanner(model, num_simulations=cfg.mcts_simulations, discount=cfg.cem.discount,
                           value_fn=value_fn)
    raise ValueError(f"plan.planner must be 'cem', 'mppi' or 'mcts', got {cfg.planner!r}")


def evaluate_planning(model, cfg: PlanConfig, out_dir: Path | None, progress: bool = True) -> PlanReport:
    """The random reference and the planner, each through the shared harness (rl/evaluate.py) with the same
    env seeds; the planner steps a CountingModel so imagined transitions per second and per decision can be
    reported next to the harness's time per action."""
    env_cfg = env_config_for(model, cfg.max_episode_steps)
    check_env_matches(model, env_cfg)
    reference = evaluate_policy(RandomPolicy(), env_cfg, cfg.random_episodes, cfg.seed)
    video_path = out_dir / "plan_episode" if (out_dir is not None and cfg.video) else None
    counting = CountingModel(model)
    policy = PlannerPolicy(counting, make_planner(counting, cfg), cfg.precision)
    planned = evaluate_policy(policy, env_cfg, cfg.episodes, cfg.seed, video_path, progress=progress,
                              desc="plan episode")
    per_action = planned.seconds_per_action  # time inside policy.act only (not the video's decoding)
    decisions = sum(planned.lengths)  # one decision per real step
    plan_time = per_action * decisions
    precision = resolve_precision(cfg.precision, model.device)
    report = PlanReport(cfg.planner, EpisodeStats.of(planned), EpisodeStats.of(reference), per_action,
                        1.0 / max(per_action, 1e-9), counting.transitions / max(plan_time, 1e-9),
                        counting.transitions / max(decisions, 1), precision, planned.video)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "plan.json", json.dumps(asdict(report), indent=2))
        atomic_write_text(out_dir / "plan.md", report.table() + "\n")
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="world model folder (from `vidworld train`)")
    p.add_argument("--config", default=None,
                   help="experiment YAML whose plan section gives the settings (e.g. configs/demo.yaml: the demo's "
                        "exact CEM); the flags below override it. Default: PlanConfig's defaults")
    p.add_argument("--planner", choices=["cem", "mppi", "mcts"], default=None, help="default cem")
    p.add_argument("--episodes", type=int, default=None, help=f"default {PlanConfig.episodes}")
    p.add_argument("--max-episode-steps", type=int, default=None, help=f"default {PlanConfig.max_episode_steps}")
    p.add_argument("--horizon", type=int, default=None, help="planning horizon (CEM/MPPI)")
    p.add_argument("--population", type=int, default=None)
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--uncertainty-samples", type=int, default=None)
    p.add_argument("--uncertainty-penalty", type=float, default=None)
    p.add_argument("--sampler-steps", type=int, default=None,
                   help="diffusion models: denoiser steps per imagined step while planning (default: the "
                        "model's own setting); a load-time override of that model kind")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="planning arithmetic: auto (default) = bf16 where the hardware runs it natively")
    p.add_argument("--seed", type=int, default=None, help=f"default {PlanConfig.seed}")
    p.add_argument("--out", default=None, help="output folder (default: <model>/../plan)")
    p.add_argument("--no-video", action="store_true")


def plan_config(args: argparse.Namespace) -> PlanConfig:
    """PlanConfig from the command's flags; a value out of range is named by its flag."""
    cem_over = {k: getattr(args, k) for k in ("horizon", "population", "iterations", "uncertainty_samples",
                                             "uncertainty_penalty") if getattr(args, k) is not None}
    base = PlanConfig()
    if args.config:
        from vidworld.experiment import load_experiment

        base = load_experiment(args.config).plan
    if cem_over.get("population", base.cem.population) < base.cem.elites:  # no --elites flag: scale it
        cem_over["elites"] = max(1, cem_over["population"] // 8)
    top = {k: getattr(args, k) for k in ("planner", "episodes", "max_episode_steps", "seed", "precision")
           if getattr(args, k) is not None}
    try:
        cem = replace(base.cem, **cem_over)
        return replace(base, cem=cem, video=not args.no_video, **top)
    except FieldError as e:
        if e.field in vars(args):
            raise ValueError(f"--{e.field.replace('_', '-')} {getattr(args, e.field)}: {e.problem}") from None
        raise ValueError(str(e)) from None


def run(args: argparse.Namespace) -> int:
    from vidworld.world_models import load_world_model

    cfg = plan_config(args)  # bad flags fail before the model loads
    if args.sampler_steps is not None and args.sampler_steps < 1:
        raise ValueError(f"--sampler-steps must be >= 1, got {args.sampler_steps}")
    check_input_dir(args.model, "--model")
    out = check_output_dir(args.out if args.out else Path(args.model).parent / "plan", "--out")
    overrides = {} if args.sampler_steps is None else {"sampler_steps": args.sampler_steps}
    model = load_world_model(args.model, **overrides)
    report = evaluate_planning(model, cfg, out)
    print(report.table())
    print(f"outputs in {out}")
    return 0
