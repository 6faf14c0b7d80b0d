"""Settings of the online loop `vidworld dream` (YAML section `dream`)."""

from __future__ import annotations

from dataclasses import dataclass

from vidworld.config import MAX_SEED, check_field


@dataclass
class DreamConfig:
    """Real-step budget, how it is split between collecting, world-model and agent updates, and evaluation.

    One iteration: collect >= `collect_steps` real steps (whole episodes) with the acting policy, append them
    to the replay (the episode store under run_dir/replay), `model_updates` world-model updates on all data
    so far, `agent_updates` actor-critic updates in imagination from `agent_batch` real start contexts.
    The first iteration collects `prefill_steps` with a random policy and trains the kind's first stages
    (diffusion: the VAE) on them. Every `eval_every` real steps: `eval_episodes` real episodes with the
    greedy actor (env seeds eval_seed, eval_seed + 1, ...).

    `agent` picks who learns: "actor_critic" (the kind's online world-model learner + the imagination
    actor-critic, section `agent`) or "muzero" (model.kind muzero, section `muzero`: self-play with MCTS from
    iteration 0 instead of a random prefill, `model_updates` MuZero updates per `collect_steps` new real
    steps, `agent_updates` and `agent_batch` unused, `acting` ignored).
    """

    real_steps: int = 50_000
    prefill_steps: int = 5_000
    collect_steps: int = 1_000
    model_updates: int = 500
    agent_updates: int = 100
    agent_batch: int = 64
    agent: str = "actor_critic"  # "actor_critic" | "muzero"
    acting: str = "actor"  # "actor" (sampled from the policy) | "planner" (MPC with plan.* settings; also
    #                        what is evaluated then)
    planner_envs: int = 8  # acting: planner: real episodes played in lockstep, one batched plan for all of them
    #                        per step (collection and evaluation); 1 = one episode at a time
    eval_every: int = 5_000
    eval_episodes: int = 10
    eval_seed: int = 100_000
    max_episode_steps: int = 500
    seed: int = 0
    snapshots: bool = False  # keep the world model of every evaluation in run_dir/snapshots/real_<steps>

    def __post_init__(self) -> None:
        for name in ("real_steps", "prefill_steps", "collect_steps", "agent_batch", "eval_every", "eval_episodes",
                     "max_episode_steps", "planner_envs"):
            check_field(self, name, ge=1)
        for name in ("model_updates", "agent_updates"):
            check_field(self, name, ge=0)
        check_field(self, "acting", one_of=("actor", "planner"))
        check_field(self, "agent", one_of=("actor_critic", "muzero"))
        check_field(self, "seed", ge=0, lt=MAX_SEED)
        check_field(self, "eval_seed", ge=0, lt=MAX_SEED)
