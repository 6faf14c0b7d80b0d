"""Accelerator set-up, exact resume, and the step counter that checkpoints carry.

accelerate's `save_state` stores model, optimizer, RNG states and every object registered with
`register_for_checkpointing` (here: `TrainProgress`, the EMA, the batch generator). Two accelerate 1.15
details handled here (see shared/PLATFORM.md):
* checkpoint folder numbers count saves, not steps, so the step lives in `TrainProgress`;
* after `load_state` with automatic naming, `project_configuration.iteration` must be set past the last
  checkpoint, or the next `save_state` fails after it has already pruned older checkpoints.
"""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration

from vidworld.train.config import TrainConfig


class TrainProgress:
    """The optimizer step reached; saved with every checkpoint."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])


class GeneratorState:
    """Makes a torch.Generator checkpointable (the batch sampler's RNG, per process)."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def state_dict(self) -> dict:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["state"])


def make_accelerator(cfg: TrainConfig, stage_dir: Path, log_dir: Path | None = None) -> Accelerator:
    """An Accelerator that checkpoints into `stage_dir/checkpoints/checkpoint_<i>`, keeping the last few."""
    use_tb = cfg.tensorboard and importlib.util.find_spec("tensorboard") is not None and log_dir is not None
    project = ProjectConfiguration(
        project_dir=str(stage_dir),
        logging_dir=str(log_dir) if log_dir else None,
        automatic_checkpoint_naming=True,
        total_limit=cfg.keep_checkpoints,
    )
    acc = Accelerator(
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.grad_accum,
        project_config=project,
        log_with="tensorboard" if use_tb else None,
    )
    return acc


def checkpoint_root(acc: Accelerator) -> Path:
    return Path(acc.project_configuration.project_dir) / "checkpoints"


def latest_checkpoint(acc: Accelerator) -> tuple[Path, int] | None:
    """(path, index) of the newest complete checkpoint_<i> folder, or None."""
    root = checkpoint_root(acc)
    if not root.is_dir():
        return None
    found = []
    for p in root.iterdir():
        m = re.fullmatch(r"checkpoint_(\d+)", p.name)
        if m and p.is_dir() and any(p.iterdir()):
            found.append((int(m.group(1)), p))
    if not found:
        return None
    idx, path = max(found)
    return path, idx


def resume_if_possible(acc: Accelerator, resume: bool) -> bool:
    """Load the newest checkpoint when `resume` and one exists. Returns whether it resumed."""
    if not resume:
        return False
    found = latest_checkpoint(acc)
    if found is None:
        return False
    path, idx = found
    acc.load_state(str(path))
    acc.project_configuration.iteration = idx + 1
    return True


def lr_at(step: int, base_lr: float, warmup: int, total: int) -> float:
    """Linear warm-up then cosine decay to 10% (computed, not a prepared scheduler: a prepared one steps
    num_processes times per optimizer step)."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
