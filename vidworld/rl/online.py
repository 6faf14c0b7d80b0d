"""`vidworld dream CONFIG [key=value ...] [--resume | --overwrite]`: model-based RL in the real env.

One loop (the shape of DreamerV3's embodied/run/train.py, with the world model and agent made by factories
so that every kind runs in it), iteration by iteration:

    1. collect >= dream.collect_steps real steps (whole episodes) with the acting policy — iteration 0: a
       random policy for dream.prefill_steps — and append them to the replay (run_dir/replay, episode store);
    2. train the world model on everything so far (the kind's online learner, e.g. diffusion/online.py);
    3. train the actor-critic in imagination from real start contexts (vidworld/agents);
    (steps 1-3 belong to the agent `dream.agent` names, a `LoopAgent`: "actor_critic" as above, or "muzero",
    which is its own world model: MCTS self-play in parallel envs, prioritised replay, MuZero updates);
    4. every dream.eval_every real steps: dream.eval_episodes real episodes with the greedy actor (the shared
       harness, rl/evaluate.py);
    5. checkpoint: loop state, agent (nets, optimisers, normaliser), RNG, and the replay's episode list.

Kill it at any moment and `--resume` continues from the last finished iteration: the world model from its
own stage checkpoints, episodes collected after the checkpoint are deleted from the store and collected
again (env seeds and policy noise are functions of the episode number), so the result equals an
uninterrupted run. Outputs: run_dir/log.jsonl (one row per iteration), dream_summary.json and
learning_curve.png (rewritten at every evaluation), model/ (the last world model), agent.pt.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from vidworld.atomic import atomic_folder, atomic_write_text, remove_stale_temps
from vidworld.config import save_config
from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env
from vidworld.experiment import ExperimentConfig, load_experiment
from vidworld.precision import inference_autocast
from vidworld.protocol import ActionSpec, map_state
from vidworld.rl.evaluate import BatchPolicy, EvalResult, Policy, RandomPolicy, evaluate_policy
from vidworld.rl.collect import collect, collect_lockstep
from vidworld.rl.policies import ActorPolicy, LockstepPlannerPolicy, PlannerPolicy
from vidworld.rl.replay import RealEpisode, Replay
from vidworld.train.episodes import WindowSampler
from vidworld.train.log import append_log, truncate_log
from vidworld.train.run import add_run_arguments, prepare_run_dir
from vidworld.world_models.counting import CountingModel
from vidworld.world_models.registry import online_learner

STATE_DIR = "dream_state"


@dataclass
class LoopState:
    """What the loop itself checkpoints (the world model and replay files checkpoint themselves)."""

    iteration: int = 0
    real_steps: int = 0
    episodes: list[str] = field(default_factory=list)  # replay store names, in order
    evaluations: list[dict] = field(default_factory=list)
    wall_seconds: float = 0.0
    agent_generator: list[int] | None = None  # torch.Generator state as a list of bytes
    imagined_transitions: int = 0  # imagined transitions the agent spent so far (learning and acting)


def episode_seed(cfg: ExperimentConfig, index: int) -> int:
    """Env seed (and policy-noise seed) of collected episode `index`: a function of the number, so a resumed
    loop collects exactly the episodes an uninterrupted one would."""
    return (cfg.dream.seed * 1_000_003 + 7919 * index + 1) % (2**31)


def save_state(run: Path, state: LoopState, agent: LoopAgent) -> None:
    with atomic_folder(run / STATE_DIR) as tmp:
        (tmp / "state.json").write_text(json.dumps(state.__dict__))
        agent_state = agent.state_dict()
        if agent_state is not None:
            torch.save(agent_state, tmp / "agent.pt")


def load_state(run: Path) -> tuple[LoopState, dict | None]:
    folder = run / STATE_DIR
    if not (folder / "state.json").is_file():
        return LoopState(), None
    try:
        state = LoopState(**json.loads((folder / "state.json").read_text()))
    except (json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"{folder / 'state.json'}: not a dream loop state ({e})") from None
    agent = torch.load(folder / "agent.pt", weights_only=False) if (folder / "agent.pt").is_file() else None
    return state, agent


def make_agent(cfg: ExperimentConfig, feature_dim: int, spec: ActionSpec):
    from vidworld.agents.actor_critic import ActorCritic

    torch.manual_seed(cfg.dream.seed)
    return ActorCritic(cfg.agent, feature_dim, spec)


def acting_policy(cfg: ExperimentConfig, model, agent, greedy: bool = False,
                  generator: torch.Generator | None = None) -> Policy | BatchPolicy:
    """How the loop acts: the actor (sampled; its mode when `greedy`), or the MPC planner with plan.* settings
    (`dream.acting: planner`, then also in evaluation: the planner is the policy being evaluated), over
    `dream.planner_envs` episodes in lockstep when that is > 1 (noise from `generator`, or seeded by the first
    episode)."""
    if cfg.dream.acting == "planner":
        from vidworld.planning.run import make_planner

        planner = make_planner(model, cfg.plan)
        if cfg.dream.planner_envs > 1:
            return LockstepPlannerPolicy(model, planner, cfg.plan.precision, generator)
        return PlannerPolicy(model, planner, cfg.plan.precision)
    return ActorPolicy(model, agent, greedy=greedy)


class LoopAgent(Protocol):
    """What the loop needs from an agent (`dream.agent` picks one; DreamerV3's make_agent factory):

    model: the current world model (None before the first update; saved to run_dir/model at the end);
    collect(env, steps, first_index, progress): >= `steps` real steps of whole episodes, episode i with env
        seed episode_seed(cfg, first_index + i) (the loop appends them to the replay);
    train(replay, iteration, progress) -> {name: [values]}: everything this iteration learns (world model
        and agent), logged as means;
    eval_policy(): the greedy policy for the shared evaluation harness (MuZero's: a BatchPolicy, all
        evaluation episodes in lockstep with one search per step);
    state_dict() / resume(replay, iteration, state): the checkpoint (run_dir/dream_state/agent.pt) and its
        restore after `iteration` finished iterations.
    """

    model: Any
    imagined_transitions: int  # imagined transitions spent learning and collecting so far (not evaluating)

    def collect(self, env: Any, steps: int, first_index: int, progress: bool) -> list[RealEpisode]: ...

    def train(self, replay: Replay, iteration: int, progress: bool) -> dict[str, list[float]]: ...

    def eval_policy(self) -> Policy | BatchPolicy: ...

    def state_dict(self) -> dict | None: ...

    def resume(self, replay: Replay, iteration: int, state: dict | None) -> None: ...


class ActorCriticLoop:
    """`dream.agent: actor_critic`: the kind's online learner (world model) + the imagination actor-critic
    (vidworld/agents); iteration 0 collects with a random policy, later ones with the actor or the MPC
    planner (`dream.acting`)."""

    def __init__(self, cfg: ExperimentConfig, run: Path, spec: ActionSpec, meta: dict, agent_gen: torch.Generator,
                 env_cfg: PixelEnvConfig):
        self.cfg, self.spec, self.agent_gen, self.env_cfg = cfg, spec, agent_gen, env_cfg
        self.learner = online_learner(cfg.model.kind)(cfg, run / "world_model", spec, meta)
        self.model = self.agent = None
        self.imagined_transitions = 0

    def resume(self, replay: Replay, iteration: int, state: dict | None) -> None:
        if iteration > 0:  # the world model of the last finished iteration (from its checkpoint)
            self.model = self.learner.update(replay.episodes(), iteration * self.cfg.dream.model_updates)
            self.agent = make_agent(self.cfg, self.model.feature_dim, self.spec)
            if state is not None:
                self.agent.load_state_dict(state)

    def collect(self, env: Any, steps: int, first_index: int, progress: bool) -> list[RealEpisode]:
        seed_fn = partial(episode_seed, self.cfg)
        if self.model is None:
            return collect(env, RandomPolicy(), steps, first_index, seed_fn, progress)
        counting = CountingModel(self.model)  # the planner imagines while acting; the actor does not
        gen = torch.Generator(device=self.model.device).manual_seed(seed_fn(first_index))
        policy = acting_policy(self.cfg, counting, self.agent, generator=gen)
        if isinstance(policy, LockstepPlannerPolicy):
            envs = [make_pixel_env(self.env_cfg) for _ in range(self.cfg.dream.planner_envs)]
            try:
                episodes = collect_lockstep(envs, policy, steps, first_index, seed_fn, progress)
            finally:
                for e in envs:
                    e.close()
        else:
            episodes = collect(env, policy, steps, first_index, seed_fn, progress)
        self.imagined_transitions += counting.transitions
        return episodes

    def train(self, replay: Replay, iteration: int, progress: bool) -> dict[str, list[float]]:
        d = self.cfg.dream
        # the world model on everything so far
        self.model = self.learner.update(replay.episodes(), (iteration + 1) * d.model_updates, progress)
        if self.agent is None:
            self.agent = make_agent(self.cfg, self.model.feature_dim, self.spec)
        # the actor-critic in imagination
        logs: dict[str, list[float]] = {}
        draw = self.start_states(replay)
        for _ in tqdm(range(d.agent_updates), desc="agent updates", disable=not progress, leave=False):
            start = draw(d.agent_batch, self.agent_gen)
            for k, v in self.agent.update(self.model, start, self.agent_gen).items():
                logs.setdefault(k, []).append(float(v))
            self.imagined_transitions += d.agent_batch * self.cfg.agent.horizon  # every start runs H steps
        return logs

    def start_states(self, replay: Replay) -> Callable[[int, torch.Generator], Any]:
        """(n, generator) -> n imagination start states from random real contexts of the replay. A learner
        that keeps the model's own encoding of the replay (the diffusion VAE's cached latents) supplies them
        without encoding frames; otherwise the frames are encoded by `model.init` at the imagination's
        precision (no graph: the agent never updates the world model). The replay is flattened once here,
        not per update (a full copy of every frame, ~0.3 s at 50k steps)."""
        cached = getattr(self.learner, "start_states", None)
        if cached is not None:
            return cached(self.model)
        sampler = WindowSampler(replay.episodes(), self.model.context_length, pad_starts=True)
        device = self.model.device

        def draw(n: int, generator: torch.Generator):
            batch = sampler.sample(n, generator)
            with torch.no_grad(), inference_autocast(device, self.cfg.agent.precision):
                start = self.model.init(batch.context.to(device), batch.actions[:, :-1].to(device))
            return map_state(lambda t: t.float() if t.dtype == torch.bfloat16 else t, start)

        return draw

    def eval_policy(self) -> Policy:
        return acting_policy(self.cfg, self.model, self.agent, greedy=True)

    def state_dict(self) -> dict | None:
        return None if self.agent is None else self.agent.state_dict()


def make_loop_agent(cfg: ExperimentConfig, run: Path, spec: ActionSpec, meta: dict, agent_gen: torch.Generator,
                    env_cfg: PixelEnvConfig, env: Any) -> LoopAgent:
    """The agent `dream.agent` names, checked against `model.kind` (MuZero is its own model)."""
    if cfg.dream.agent == "muzero":
        if cfg.model.kind != "muzero":
            raise ValueError(f"config key 'dream.agent': 'muzero' learns its own model; set model.kind: muzero "
                             f"(got {cfg.model.kind!r})")
        from vidworld.rl.muzero_agent import MuZeroAgent

        return MuZeroAgent(cfg, spec, meta, env_cfg, env, lambda i: episode_seed(cfg, i))
    if cfg.model.kind == "muzero":
        raise ValueError("config key 'dream.agent': model.kind 'muzero' is trained by its own agent; "
                         f"set dream.agent: muzero (got {cfg.dream.agent!r})")
    return ActorCriticLoop(cfg, run, spec, meta, agent_gen, env_cfg)


def run_dream(cfg: ExperimentConfig, resume: bool = False, overwrite: bool = False, progress: bool = True) -> dict:
    d = cfg.dream
    run = prepare_run_dir(cfg, resume, overwrite)
    run.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(run)
    save_config(cfg, run / "config.yaml")
    torch.set_num_threads(cfg.train.num_threads) if cfg.train.num_threads > 0 else None
    env_cfg = PixelEnvConfig(**{**cfg.collect.env.__dict__, "max_episode_steps": d.max_episode_steps})
    env = make_pixel_env(env_cfg)
    space = env.action_space
    if getattr(space, "n", None) is None:  # gymnasium: only Discrete spaces have n
        raise ValueError(f"env {env_cfg.id}: the dream loop needs discrete actions, got {space}")
    spec = ActionSpec(kind="discrete", n=int(space.n))
    fps = float(env.metadata.get("render_fps") or 15)

    state, agent_state = load_state(run) if resume else (LoopState(), None)
    replay = Replay.open(run / "replay", env_cfg.id, env_cfg.frame_size, fps, space,
                         keep=state.episodes if resume else None)
    meta = {"env_id": env_cfg.id, "dataset": str(run / "replay"), "fps": fps, "val_fraction": 0.0, "split_seed": 0}
    agent_gen = torch.Generator().manual_seed(d.seed + 1)
    agent = make_loop_agent(cfg, run, spec, meta, agent_gen, env_cfg, env)
    if state.agent_generator is not None:
        agent_gen.set_state(torch.tensor(state.agent_generator, dtype=torch.uint8))
    log_file = run / "log.jsonl"
    truncate_log(log_file, state.iteration)  # rows of iterations after the checkpoint are redone
    agent.resume(replay, state.iteration, agent_state)
    agent.imagined_transitions = state.imagined_transitions
    t0 = time.perf_counter() - state.wall_seconds
    bar = tqdm(total=d.real_steps, initial=min(state.real_steps, d.real_steps), desc="dream real steps",
               disable=not progress)
    while state.real_steps < d.real_steps:
        it = state.iteration
        # 1. collect real episodes (iteration 0: the prefill)
        budget = d.prefill_steps if it == 0 else min(d.collect_steps, d.real_steps - state.real_steps)
        episodes = agent.collect(env, budget, len(replay.names), progress)
        for ep in episodes:
            replay.append(ep)
        new_steps = sum(ep.steps for ep in episodes)
        state.real_steps += new_steps
        bar.update(new_steps)
        # 2.-3. world model and agent on everything so far
        agent_logs = agent.train(replay, it, progress)
        # 4. evaluate in the real env
        evaluated = None
        crossed = state.real_steps // d.eval_every > (state.real_steps - new_steps) // d.eval_every
        if crossed or state.real_steps >= d.real_steps:
            evaluated = evaluate_policy(agent.eval_policy(), env_cfg, d.eval_episodes, d.eval_seed)
            if d.snapshots:  # the world model this evaluation acted with (compare: error vs return)
                agent.model.save_pretrained(run / "snapshots" / f"real_{state.real_steps}")
            state.evaluations.append({"real_steps": state.real_steps, "wall_minutes": (time.perf_counter() - t0) / 60,
                                      "return_mean": evaluated.mean, "return_std": evaluated.std,
                                      "returns": list(evaluated.returns),
                                      "decisions_per_s": evaluated.decisions_per_s})
        # 5. log and checkpoint
        state.iteration += 1
        state.episodes = replay.names
        state.wall_seconds = time.perf_counter() - t0
        state.agent_generator = agent_gen.get_state().tolist()
        state.imagined_transitions = agent.imagined_transitions
        row = {"step": state.iteration, "real_steps": state.real_steps, "wall_minutes": state.wall_seconds / 60,
               "collect_return": float(np.mean([ep.rewards.sum() for ep in episodes])),
               **{k: float(np.mean(v)) for k, v in agent_logs.items()},
               **({"eval_return": evaluated.mean} if evaluated is not None else {})}
        append_log(log_file, row)
        save_state(run, state, agent)
        if evaluated is not None:  # a long run's summary and learning curve stay current between evaluations
            write_outputs(run, state, evaluated_policy(cfg))
        bar.set_postfix(eval=f"{state.evaluations[-1]['return_mean']:.1f}" if state.evaluations else "-")
    bar.close()
    env.close()
    agent.model.save_pretrained(run / "model")
    summary = write_outputs(run, state, evaluated_policy(cfg))
    return summary


def evaluated_policy(cfg: ExperimentConfig) -> str:
    """What the loop evaluates, for the learning curve's legend."""
    if cfg.dream.agent == "muzero":
        return "MuZero search, greedy"
    if cfg.dream.acting == "planner":
        return f"MPC planner ({cfg.plan.planner})"
    return "greedy actor"


def write_outputs(run: Path, state: LoopState, policy: str) -> dict:
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
    summary = {"real_steps": state.real_steps, "wall_minutes": state.wall_seconds / 60,
               "iterations": state.iteration, "episodes": len(state.episodes),
               "imagined_transitions": state.imagined_transitions, "evaluations": state.evaluations}
    atomic_write_text(run / "dream_summary.json", json.dumps(summary, indent=2))
    plot_learning_curve(rows, state.evaluations, run / "learning_curve.png", policy)
    return summary


def plot_learning_curve(rows: list[dict], evaluations: list[dict], path: Path, policy: str) -> None:
    """Return vs real steps and vs wall time (`policy` names what was evaluated), and the collection
    episodes' return beside the actor's imagined return (left out when no actor imagined: planner, MuZero)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vidworld.eval.report import _save_figure

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    steps = [e["real_steps"] for e in evaluations]
    mean = np.array([e["return_mean"] for e in evaluations])
    std = np.array([e["return_std"] for e in evaluations])
    for ax, x, label in ((axes[0], steps, "real steps"), (axes[1], [e["wall_minutes"] for e in evaluations],
                                                             "wall time (min)")):
        ax.plot(x, mean, "o-", label=f"real return ({policy})")
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
        ax.set_xlabel(label)
        ax.set_ylabel("return")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    x = [r["real_steps"] for r in rows]
    axes[2].plot(x, [r.get("collect_return", np.nan) for r in rows], ".-", label="real (collection episodes)")
    imagined = [r.get("imagined_return", np.nan) for r in rows]
    if not np.all(np.isnan(imagined)):
        axes[2].plot(x, imagined, ".-", label="imagined (actor in model)")
        axes[2].set_title("imagined vs real return", fontsize=9)
    else:
        axes[2].set_title("return of the collected episodes", fontsize=9)
    axes[2].set_xlabel("real steps")
    axes[2].legend(fontsize=8)
    axes[2].grid(alpha=0.3)
    _save_figure(fig, path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p, "experiment YAML with a dream section, e.g. configs/dream_cartpole.yaml",
                      "key.sub=value overrides, e.g. dream.real_steps=20000")


def run(args: argparse.Namespace) -> int:
    cfg = load_experiment(args.config, args.overrides)
    summary = run_dream(cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress)
    last = summary["evaluations"][-1] if summary["evaluations"] else None
    print(json.dumps({k: v for k, v in summary.items() if k != "evaluations"}))
    if last:
        print(f"return {last['return_mean']:.1f} ± {last['return_std']:.1f} after {last['real_steps']} real steps")
    print(f"outputs in {cfg.run_dir}")
    return 0


__all__ = ["EvalResult", "LoopState", "run_dream"]
