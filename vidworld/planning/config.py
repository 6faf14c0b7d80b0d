"""Settings of `vidworld plan` and the demo's planning stage (YAML section `plan`), range-checked when built
(see train/config.py); the nested `cem` section is checked by CEMConfig itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from vidworld.config import MAX_SEED, check_field
from vidworld.planning.cem import CEMConfig
from vidworld.precision import PRECISIONS


def _default_cem() -> CEMConfig:
    # 16 candidates x 2 diffusion samples each, scored by mean - 0.5 std of the return: on the demo model this
    # beat 32 candidates x 1 sample at the same cost (136.0 vs 111.8 mean CartPole return over 5 episodes).
    return CEMConfig(horizon=8, population=16, elites=4, iterations=2, discount=0.95,
                     uncertainty_samples=2, uncertainty_penalty=0.5)


@dataclass
class PlanConfig:
    planner: str = "cem"  # "cem" | "mppi" | "mcts"
    cem: CEMConfig = field(default_factory=_default_cem)
    use_value: bool = True  # the model's learned value (if it has one) as the terminal value of a plan
    mcts_simulations: int = 32
    precision: str = "auto"  # "auto" (bf16 where the hardware has it natively) | "fp32" | "bf16"
    episodes: int = 5  # real-env episodes to evaluate
    max_episode_steps: int = 500  # real-env cap (CartPole-v1's own limit is 500)
    random_episodes: int = 20  # episodes of the random-policy reference
    seed: int = 1000  # real-env seeds seed, seed+1, ... (disjoint from the collection seeds)
    video: bool = True  # save one episode with the planner's imagined best future beside the real frame

    def __post_init__(self) -> None:
        check_field(self, "planner", one_of=("cem", "mppi", "mcts"))
        check_field(self, "precision", one_of=PRECISIONS)
        for name in ("episodes", "max_episode_steps", "random_episodes", "mcts_simulations"):
            check_field(self, name, ge=1)
        check_field(self, "seed", ge=0, lt=MAX_SEED)
