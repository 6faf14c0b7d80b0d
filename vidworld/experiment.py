"""The experiment config: one section per component, each defined in the module that owns it.

    cfg = load_experiment("configs/demo.yaml", ["train.dynamics_steps=100"])

`data.path` is where the episodes are (the demo collects into it); `collect` says how to make them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from vidworld.config import load_config
from vidworld.data.collect import CollectConfig
from vidworld.data.dataset import DatasetConfig
from vidworld.diffusion.sampler import SamplerConfig
from vidworld.eval.config import EvalConfig
from vidworld.models.denoiser import DenoiserConfig
from vidworld.models.heads import HeadsConfig
from vidworld.models.vae import VAEConfig
from vidworld.models.value import ValueConfig
from vidworld.planning.config import PlanConfig
from vidworld.train.config import TrainConfig


@dataclass
class ExperimentConfig:
    run_dir: str = "runs/demo"
    collect: CollectConfig = field(default_factory=CollectConfig)
    data: DatasetConfig = field(default_factory=DatasetConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    value: ValueConfig = field(default_factory=ValueConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)


def load_experiment(path: str | os.PathLike | None, overrides: list[str] | None = None) -> ExperimentConfig:
    return load_config(ExperimentConfig, path, overrides)
