"""Settings of `vidworld compare` (its own YAML, e.g. configs/compare_cartpole.yaml).

A comparison is a list of (world model, consumer) pairs, each a `vidworld dream` experiment config run
through the same online loop with the same real env, the same real-step budget, the same evaluation seeds and
the same harness; two budget profiles (`full`, and `quick` for `--quick`); and the held-out episodes on which
the video models' fidelity is measured.

How budgets are matched (the README's comparison section says the same): every pair gets the same number of
REAL steps (the budget that matters in model-based RL) and the same evaluation protocol; the compute each pair
spends is whatever its own config sets and is reported beside the return (wall minutes, imagined transitions
spent), so "return per real step", "per wall-clock minute" and "per imagined transition" can all be read off
the table. `profile.overrides` apply one change to every pair (e.g. fewer updates per iteration in `quick`),
`profile.model_overrides[kind]` one to every pair of that model kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vidworld.config import FieldError, check_field

# consumer -> the dream overrides that make the loop act (and be evaluated) with it
CONSUMERS: dict[str, list[str]] = {
    "actor_critic": ["dream.acting=actor"],
    "cem": ["dream.acting=planner", "plan.planner=cem", "dream.agent_updates=0"],
    "mppi": ["dream.acting=planner", "plan.planner=mppi", "dream.agent_updates=0"],
    "mcts": ["dream.acting=planner", "plan.planner=mcts", "dream.agent_updates=0"],
    "muzero": ["dream.agent=muzero"],  # MuZero's own search acts; its config selects the agent
}


@dataclass
class PairConfig:
    """One row of the table: `model` (a label that must equal the config's model.kind), `consumer` (a key of
    CONSUMERS), `config` (a `vidworld dream` experiment YAML) and extra `overrides` for this pair only."""

    model: str = ""
    consumer: str = ""
    config: str = ""
    overrides: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_field(self, "consumer", one_of=tuple(CONSUMERS))
        if not self.model:
            raise FieldError("model", "must name the world model kind (diffusion, rssm, muzero)", "PairConfig")
        if not self.config:
            raise FieldError("config", "must name a `vidworld dream` experiment YAML", "PairConfig")

    @property
    def name(self) -> str:
        return f"{self.model}+{self.consumer}"


@dataclass
class FidelityConfig:
    """Held-out episodes (random policy, a seed no pair collects with) and the open-loop evaluation of every
    pixel-decoding model on them: PSNR/SSIM vs horizon 1..horizon, controllability, imagined transitions/s."""

    heldout_steps: int = 30_000  # random CartPole episodes last ~22 steps: 30k steps hold ~25 of >= 58 frames
    heldout_seed: int = 777_777
    horizon: int = 50
    max_clips: int = 256
    controllability_clips: int = 64
    report_horizons: list[int] = field(default_factory=lambda: [1, 5, 15, 50])

    def __post_init__(self) -> None:
        for name in ("heldout_steps", "horizon", "max_clips"):
            check_field(self, name, ge=1)
        check_field(self, "controllability_clips", ge=0)
        check_field(self, "heldout_seed", ge=0)
        if not self.report_horizons or any(not 1 <= t <= self.horizon for t in self.report_horizons):
            raise FieldError("report_horizons", f"must list steps in [1, horizon={self.horizon}], got "
                             f"{self.report_horizons}", "FidelityConfig")


@dataclass
class BudgetConfig:
    """One profile: seeds per pair, the real-step budget, the evaluation cadence, overrides for every pair."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    real_steps: int = 50_000
    eval_every: int = 5_000
    eval_episodes: int = 10
    overrides: list[str] = field(default_factory=list)
    # per model kind, applied after `overrides` (e.g. {rssm: [dream.model_updates=100]}: an RSSM update
    # replays 16 x 32 frames, ~8x a diffusion update's cost; the quick profile matches wall time)
    model_overrides: dict[str, list[str]] = field(default_factory=dict)
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)

    def __post_init__(self) -> None:
        for kind, extra in self.model_overrides.items():
            if not isinstance(extra, list) or not all(isinstance(o, str) for o in extra):
                raise FieldError("model_overrides", f"{kind!r} must map to a list of key=value strings, got {extra!r}",
                                 "BudgetConfig")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise FieldError("seeds", f"must list distinct seeds >= 0, got {self.seeds}", "BudgetConfig")
        for name in ("real_steps", "eval_every", "eval_episodes"):
            check_field(self, name, ge=1)


@dataclass
class CompareConfig:
    run_dir: str = "runs/compare_cartpole"
    env_id: str = "CartPole-v1"  # every pair runs on this env at this frame size (checked against its config)
    frame_size: int = 64
    pairs: list[PairConfig] = field(default_factory=list)
    full: BudgetConfig = field(default_factory=BudgetConfig)
    quick: BudgetConfig = field(default_factory=lambda: BudgetConfig(seeds=[0], real_steps=5_000, eval_every=2_500,
                                                                     eval_episodes=5))

    def __post_init__(self) -> None:
        check_field(self, "frame_size", ge=8)
        if not self.pairs:
            raise FieldError("pairs", "must list at least one {model, consumer, config} pair", "CompareConfig")
        names = [p.name for p in self.pairs]
        if len(set(names)) != len(names):
            raise FieldError("pairs", f"lists a model+consumer pair twice: {names}", "CompareConfig")
