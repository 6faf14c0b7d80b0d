"""Settings of `vidworld plan` and the demo's planning stage (YAML section `plan`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vidworld.planning.cem import CEMConfig


@dataclass
class PlanConfig:
    planner: str = "cem"  # "cem" | "mppi" | "mcts"
    cem: CEMConfig = field(
        default_factory=lambda: CEMConfig(horizon=8, population=32, elites=4, iterations=2, discount=0.95)
    )
    use_value: bool = True  # the model's learned value (if it has one) as the terminal value of a plan
    mcts_simulations: int = 32
    sampler_steps: int = 1  # denoiser steps while planning (0 = the model's own setting)
    episodes: int = 5  # real-env episodes to evaluate
    max_episode_steps: int = 500  # real-env cap (CartPole-v1's own limit is 500)
    random_episodes: int = 20  # episodes of the random-policy reference
    seed: int = 1000  # real-env seeds seed, seed+1, ... (disjoint from the collection seeds)
    video: bool = True  # save one episode with the planner's imagined best future beside the real frame
