"""Accelerator set-up, exact resume, and the step counter that checkpoints carry.

accelerate's `save_state` stores model, optimizer, RNG states and every object registered with
`register_for_checkpointing` (here: `TrainProgress`, the EMA, the batch generator). We name and prune
checkpoint folders ourselves (`save_checkpoint`): accelerate 1.15's automatic naming counts saves rather
than steps, needs `project_configuration.iteration` fixed after `load_state`, and raced between two gloo
processes here. The step itself lives in `TrainProgress`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import warnings
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import ProjectConfiguration

from vidworld.precision import native_bf16
from vidworld.train.config import TrainConfig


class TrainProgress:
    """The optimizer step reached and the training-loop seconds spent to reach it (summed over resumes);
    saved with every checkpoint. Checkpoints written before the time was kept load with seconds = nan."""

    def __init__(self) -> None:
        self.step = 0
        self.seconds = 0.0

    def state_dict(self) -> dict:
        return {"step": self.step, "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.seconds = float(state.get("seconds", float("nan")))


class GeneratorState:
    """Makes a torch.Generator checkpointable (the batch sampler's RNG, per process)."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def state_dict(self) -> dict:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["state"])


def _allow_precision_change(mixed_precision: str) -> None:
    """accelerate keeps one process-wide AcceleratorState and refuses a second Accelerator with another
    mixed_precision. One process may train several models in turn (`vidworld compare`: the diffusion model in
    fp32, then the RSSM in bf16): with a single process the state is reset for the new precision; in a
    launched process group (the state holds the group) a change is a one-line error instead."""
    shared = AcceleratorState._shared_state
    if not shared or shared.get("_mixed_precision", mixed_precision) == mixed_precision:
        return
    if PartialState().num_processes > 1:
        raise ValueError(f"config key 'train.mixed_precision': {mixed_precision!r} after {shared['_mixed_precision']!r} "
                         "in the same launched process group; use one precision for every model of a distributed run")
    AcceleratorState._reset_state()


def resolve_mixed_precision(mixed_precision: str) -> str:
    """train.mixed_precision -> accelerate's name: "auto" is "bf16" where the device accelerate will use runs
    bf16 natively, else "no" (emulated bf16 on a CPU without AVX512-BF16 trains ~3x slower than fp32)."""
    if mixed_precision != "auto":
        return mixed_precision
    return "bf16" if native_bf16(PartialState().device) else "no"


def make_accelerator(cfg: TrainConfig, stage_dir: Path, log_dir: Path | None = None) -> Accelerator:
    """An Accelerator for one training stage; checkpoints go to stage_dir/checkpoints (see save_checkpoint)."""
    use_tb = cfg.tensorboard and importlib.util.find_spec("tensorboard") is not None and log_dir is not None
    project = ProjectConfiguration(project_dir=str(stage_dir), logging_dir=str(log_dir) if log_dir else None)
    mixed_precision = resolve_mixed_precision(cfg.mixed_precision)
    _allow_precision_change(mixed_precision)
    return Accelerator(
        mixed_precision=mixed_precision,
        gradient_accumulation_steps=cfg.grad_accum,
        project_config=project,
        log_with="tensorboard" if use_tb else None,
    )


def checkpoint_root(acc: Accelerator) -> Path:
    return Path(acc.project_configuration.project_dir) / "checkpoints"


def save_checkpoint(acc: Accelerator, step: int, keep: int) -> Path:
    """save_state into checkpoints/checkpoint_<step>, atomically: every process writes into a temp folder,
    then the main process renames it and prunes all but the newest `keep`. We name folders by step and
    manage them ourselves: accelerate's automatic naming races between processes on CPU/gloo (the second
    process finds the folder the first just made) and counts saves rather than steps."""
    root = checkpoint_root(acc)
    final, tmp = root / f"checkpoint_{step}", root / f".checkpoint_{step}.tmp"
    if acc.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    acc.wait_for_everyone()
    tmp.mkdir(parents=True, exist_ok=True)
    acc.save_state(str(tmp))
    acc.wait_for_everyone()
    if acc.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        prune_checkpoints(root, keep)
    acc.wait_for_everyone()
    return final


def prune_checkpoints(root: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints. Each is first renamed to a hidden temp name, so a kill
    mid-delete never leaves a half-deleted folder that still looks like a complete checkpoint."""
    for _, old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        doomed = old.with_name(f".{old.name}.tmp")
        os.replace(old, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def list_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (step, path), oldest first."""
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = re.fullmatch(r"checkpoint_(\d+)", p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


def resume_if_possible(acc: Accelerator, resume: bool, max_step: int | None = None) -> bool:
    """Load the newest checkpoint (at most `max_step`, if given) when `resume` and one exists. Returns whether
    it resumed. `max_step`: an online learner asked for fewer steps than a killed later call had reached
    resumes from where it was, not from the future."""
    if not resume:
        return False
    found = [c for c in list_checkpoints(checkpoint_root(acc)) if max_step is None or c[0] <= max_step]
    for step, path in reversed(found):  # newest first; a damaged one falls back to the one before
        try:
            acc.load_state(str(path))
            return True
        except Exception as e:  # SafetensorError, EOFError, pickle errors of a damaged file
            warnings.warn(f"checkpoint {path} cannot be loaded ({type(e).__name__}: {str(e)[:200]}); trying an "
                          "older one", stacklevel=2)
    if found:
        raise ValueError(f"no loadable checkpoint in {checkpoint_root(acc)} (all {len(found)} damaged); "
                         "use --overwrite to start over")
    return False
