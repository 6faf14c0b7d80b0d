"""The experiment config: one section per component, each defined in the module that owns it.

    cfg = load_experiment("configs/demo.yaml", ["train.dynamics_steps=100"])

`data.path` is where the episodes are (the demo collects into it); `collect` says how to make them;
`model.kind` picks the world model, whose own settings are in the section named after the kind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from vidworld.config import load_config
from vidworld.data.collect import CollectConfig
from vidworld.data.dataset import DatasetConfig
from vidworld.agents.actor_critic import ActorCriticConfig
from vidworld.eval.config import EvalConfig
from vidworld.planning.config import PlanConfig
from vidworld.rl.config import DreamConfig
from vidworld.rl.muzero_config import MuZeroConfig
from vidworld.train.config import TrainConfig
from vidworld.world_models.diffusion.config import DiffusionConfig
from vidworld.world_models.registry import ModelConfig
from vidworld.world_models.rssm.config import RSSMConfig


@dataclass
class ExperimentConfig:
    run_dir: str = "runs/demo"
    collect: CollectConfig = field(default_factory=CollectConfig)
    data: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    rssm: RSSMConfig = field(default_factory=RSSMConfig)
    muzero: MuZeroConfig = field(default_factory=MuZeroConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    agent: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    dream: DreamConfig = field(default_factory=DreamConfig)


def load_experiment(path: str | os.PathLike | None, overrides: list[str] | None = None) -> ExperimentConfig:
    return load_config(ExperimentConfig, path, overrides)
