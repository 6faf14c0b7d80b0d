"""`vidworld train CONFIG [key=value ...] [--resume | --overwrite]`: train the world model `model.kind` names.

    run_dir/
      config.yaml              the resolved config (a --resume must match it in all but the step budget)
      <kind's own folders>     stage checkpoints and logs (see the kind's trainer, e.g. diffusion/train.py)
      model/                   save_pretrained: the one folder to load (`load_world_model`)
      train_summary.json       sizes, speeds, kind-specific numbers, skipped episodes

A fresh run refuses a run_dir that already holds a run (its checkpoints would win the resume later):
pass --resume to continue it or --overwrite to start over. The same script runs unchanged on one CPU
process, on GPUs, or under `ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 -m vidworld.cli train ...`.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env

from vidworld.atomic import atomic_write_text, remove_stale_temps
from vidworld.config import save_config, to_dict
from vidworld.experiment import ExperimentConfig, load_experiment
from vidworld.paths import check_output_dir
from vidworld.train.data import load_train_data
from vidworld.world_models.registry import trainer


@dataclass(frozen=True)
class TrainOutput:
    model: Any
    model_dir: Path
    summary: dict


# What a --resume may change: how long to train, and settings that do not touch the training itself.
RESUMABLE_CHANGES = ("train.vae_steps", "train.dynamics_steps", "train.num_threads", "train.tensorboard",
                     "rssm.train_steps", "dream.real_steps", "eval.", "plan.", "collect.steps", "collect.policy",
                     "collect.out")


def flat_config(d: dict, prefix: str = "") -> dict:
    """Nested config dict -> {"section.key": value} (how resumes and runs compare their settings)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(flat_config(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def check_resumable(cfg: ExperimentConfig, saved: Path) -> None:
    """Refuse to resume a run made with other settings (anything but the step budget), naming the keys."""
    try:
        old = flat_config(yaml.safe_load(saved.read_text()) or {})
    except yaml.YAMLError as e:
        raise ValueError(f"{saved}: not valid YAML ({str(e).splitlines()[0]}); cannot check the run to resume") from None
    new = flat_config(to_dict(cfg))
    # keys the saved config lacks are sections added to vidworld after that run: not a change of the run;
    # run_dir may differ when the folder was moved
    diff = [k for k in sorted(set(new) & set(old)) if not k.startswith(RESUMABLE_CHANGES) and k != "run_dir"
            and old[k] != new[k]]
    if diff:
        details = ", ".join(f"{k}: run {old.get(k)!r} vs now {new.get(k)!r}" for k in diff[:6])
        more = f" (+{len(diff) - 6} more)" if len(diff) > 6 else ""
        raise ValueError(f"--resume: the run in {saved.parent} was made with other settings ({details}{more}); "
                         "only the step budget may change; use another run_dir, or --overwrite to start over")


def prepare_run_dir(cfg: ExperimentConfig, resume: bool, overwrite: bool) -> Path:
    """Check run_dir before any work: a fresh run needs an empty (or absent) folder, a resume a matching one."""
    run = check_output_dir(cfg.run_dir, "run_dir")
    existing = [p for p in run.iterdir()] if run.is_dir() else []
    if overwrite and existing:
        data = Path(cfg.data.path).resolve()
        if data == run.resolve() or run.resolve() in data.parents:
            raise ValueError(f"--overwrite would delete the dataset {cfg.data.path} inside run_dir {run}")
        shutil.rmtree(run)
        existing = []
    if resume and (run / "config.yaml").is_file():
        check_resumable(cfg, run / "config.yaml")
    elif existing and not resume:
        raise ValueError(f"run_dir {run} already holds a run ({', '.join(sorted(p.name for p in existing)[:4])}); "
                         "pass --resume to continue it, --overwrite to start over, or choose another run_dir")
    return run


def train_world_model(cfg: ExperimentConfig, resume: bool = False, progress: bool = True,
                      overwrite: bool = False) -> TrainOutput:
    state = process_state()
    train_fn = trainer(cfg.model.kind)  # a clear error for a kind with nothing to train, before any work
    if state.is_main_process:
        run = prepare_run_dir(cfg, resume, overwrite)
        run.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(run)  # temps of a killed write (config, summary, model folder)
        save_config(cfg, run / "config.yaml")
    state.wait_for_everyone()
    run = Path(cfg.run_dir)
    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    data = load_train_data(cfg)
    trained = train_fn(cfg, data, resume=resume, progress=progress)
    summary = {
        "kind": cfg.model.kind,
        "train_frames": data.train.num_frames,
        "val_frames": data.val.num_frames,
        **trained.summary,
        "skipped_episodes": list(data.skipped),
        "num_processes": state.num_processes,
    }
    model_dir = run / "model"
    if state.is_main_process:
        trained.model.save_pretrained(model_dir)
        atomic_write_text(run / "train_summary.json", json.dumps(summary, indent=2))
    state.wait_for_everyone()
    return TrainOutput(model=trained.model, model_dir=model_dir, summary=summary)


def process_state() -> PartialState:
    """accelerate's process state, created the way Accelerator will see it (ACCELERATE_USE_CPU=1 under
    torchrun means several CPU processes over gloo; a PartialState made first without it stays single)."""
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def add_run_arguments(p: argparse.ArgumentParser, config_help: str, override_help: str) -> None:
    """CONFIG, key=value overrides, --resume | --overwrite, --no-progress: every command that owns a run_dir."""
    p.add_argument("config", help=config_help)
    p.add_argument("overrides", nargs="*", help=override_help)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run in run_dir from its checkpoints")
    group.add_argument("--overwrite", action="store_true", help="delete what run_dir holds and start over")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p, "experiment YAML, e.g. configs/demo.yaml or configs/tiny/diffusion.yaml",
                      "key.sub=value overrides, e.g. train.dynamics_steps=2000")


def run(args: argparse.Namespace) -> int:
    cfg = load_experiment(args.config, args.overrides)
    out = train_world_model(cfg, resume=args.resume, progress=not args.no_progress, overwrite=args.overwrite)
    if process_state().is_main_process:
        print(json.dumps(out.summary, indent=2))
        print(f"model saved to {out.model_dir}")
    return 0
