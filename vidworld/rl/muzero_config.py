"""Settings of the MuZero agent (YAML section `muzero`): its networks, its search, its learner.

Defaults follow muzero-general's CartPole and EfficientZero/LightZero where they differ in ways that
matter on a CPU budget (Adam 3e-3, unroll 5, PER alpha 0.6 / beta 0.4)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vidworld.config import FieldError, check_field
from vidworld.world_models.muzero.config import MuZeroNetConfig


@dataclass
class MuZeroSearchConfig:
    """Self-play and evaluation search (the shared batched MCTS, vidworld/planning/mcts.py).

    num_envs: real envs stepped in lockstep during self-play (one search over all their roots per step);
    num_simulations: per move (eval_simulations at evaluation, 0 = the same); Dirichlet root noise
    (alpha, fraction) in self-play only; temperatures[i] applies once dream real steps reach
    temperature_steps[i] * dream.real_steps (muzero-general's visit_softmax_temperature_fn: 1, 0.5, 0.25 at
    0, 50%, 75%); evaluation is greedy (most visited action, no noise)."""

    num_envs: int = 16
    num_simulations: int = 50
    eval_simulations: int = 0
    discount: float = 0.997
    pb_c_init: float = 1.25
    pb_c_base: float = 19652.0
    dirichlet_alpha: float = 0.25
    dirichlet_fraction: float = 0.25
    temperatures: list[float] = field(default_factory=lambda: [1.0, 0.5, 0.25])
    temperature_steps: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.75])

    def __post_init__(self) -> None:
        for name in ("num_envs", "num_simulations"):
            check_field(self, name, ge=1)
        check_field(self, "eval_simulations", ge=0, note="0 = num_simulations")
        check_field(self, "discount", gt=0, le=1)
        check_field(self, "dirichlet_alpha", gt=0)
        check_field(self, "dirichlet_fraction", ge=0, le=1)
        if len(self.temperatures) != len(self.temperature_steps) or not self.temperatures:
            raise FieldError("temperatures", f"needs one entry per temperature_steps entry, got {self.temperatures} "
                             f"and {self.temperature_steps}", type(self).__name__)
        if min(self.temperatures) <= 0 or list(self.temperature_steps) != sorted(self.temperature_steps):
            raise FieldError("temperature_steps", "temperatures must be > 0 and temperature_steps ascending, got "
                             f"{self.temperatures} at {self.temperature_steps}", type(self).__name__)

    def temperature(self, fraction: float) -> float:
        """The visit-count temperature once `fraction` of the real-step budget is spent."""
        t = self.temperatures[0]
        for temp, start in zip(self.temperatures, self.temperature_steps):
            if fraction >= start:
                t = temp
        return float(t)


@dataclass
class MuZeroLearnConfig:
    """batch_size samples of unroll_steps (K) model steps, n-step value targets with td_steps bootstrapped
    from a target network copied every target_update_interval updates; prioritised replay (alpha, beta);
    value_loss_weight (MuZero's 0.25 for reanalysed targets); reanalyse_fraction of each batch's policy
    targets recomputed by a fresh search with the latest network (0 = off); consistency_weight of
    EfficientZero's self-supervised temporal consistency loss (Ye et al. 2021: 2.0; 0 = off, and the networks
    then have no projection heads). The number of updates per iteration is dream.model_updates."""

    batch_size: int = 128
    unroll_steps: int = 5
    td_steps: int = 10
    lr: float = 3e-3
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    value_loss_weight: float = 0.25
    target_update_interval: int = 200
    priority_alpha: float = 0.6
    priority_beta: float = 0.4
    reanalyse_fraction: float = 0.0
    consistency_weight: float = 0.0

    def __post_init__(self) -> None:
        for name in ("batch_size", "unroll_steps", "td_steps", "target_update_interval"):
            check_field(self, name, ge=1)
        for name in ("lr", "grad_clip", "value_loss_weight"):
            check_field(self, name, gt=0)
        for name in ("weight_decay", "consistency_weight"):
            check_field(self, name, ge=0)
        for name in ("priority_alpha", "priority_beta", "reanalyse_fraction"):
            check_field(self, name, ge=0, le=1)
        if self.consistency_weight > 0 and self.batch_size < 2:
            raise FieldError("batch_size", f"must be >= 2 with consistency_weight > 0 (the projection heads' "
                             f"BatchNorm needs a batch), got {self.batch_size}", type(self).__name__)


@dataclass
class MuZeroConfig:
    network: MuZeroNetConfig = field(default_factory=MuZeroNetConfig)
    search: MuZeroSearchConfig = field(default_factory=MuZeroSearchConfig)
    learn: MuZeroLearnConfig = field(default_factory=MuZeroLearnConfig)
