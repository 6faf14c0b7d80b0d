"""`vidworld train CONFIG [key=value ...] [--resume]`: VAE, then denoiser + heads, then one model folder.

    run_dir/
      config.yaml              the resolved config
      vae/                     stage-1 result (FrameVAE with measured latent shift/scale)
      stage_vae/checkpoints    accelerate save_state checkpoints of stage 1 (resume)
      stage_dynamics/...       the same for stage 2, plus log.jsonl (and tb/ with the tensorboard extra)
      model/                   DiffusionWorldModel.save_pretrained: the one folder to load
      train_summary.json       sizes, speeds, VAE reconstruction PSNR

The same script runs unchanged on one CPU process, on GPUs, or under
`ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 -m vidworld.cli train ...` (2 processes, gloo).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env

from vidworld.atomic import atomic_folder, atomic_write_text
from vidworld.config import save_config, to_dict
from vidworld.data.dataset import SegmentDataset
from vidworld.experiment import ExperimentConfig, load_experiment
from vidworld.models.vae import FrameVAE
from vidworld.protocol import ActionSpec
from vidworld.train.dynamics_stage import train_dynamics
from vidworld.train.episodes import Episodes
from vidworld.train.vae_stage import reconstruction_psnr, train_vae
from vidworld.world_model import DiffusionWorldModel


@dataclass(frozen=True)
class TrainOutput:
    model: DiffusionWorldModel
    model_dir: Path
    summary: dict


def load_split(cfg: ExperimentConfig, split: str) -> tuple[Episodes, SegmentDataset]:
    """Decode every episode of a split once into an in-memory `Episodes` (frames uint8 [N, 3, H, W])."""
    ds = SegmentDataset.from_config(cfg.data, split=split)
    obs, acts, rews, terms = [], [], [], []
    for ep in ds.iter_episodes():
        obs.append(torch.from_numpy(np.ascontiguousarray(ep.frames)).permute(0, 3, 1, 2))
        acts.append(torch.from_numpy(np.asarray(ep.arrays.actions)))
        rews.append(torch.from_numpy(np.asarray(ep.arrays.rewards, dtype=np.float32)))
        terms.append(torch.from_numpy(np.asarray(ep.arrays.terminated, dtype=bool)))
    if not obs:
        raise ValueError(f"dataset {cfg.data.path}: the {split!r} split has no episodes")
    return Episodes.from_lists(obs, acts, rews, terms), ds


def action_spec_of(ds: SegmentDataset) -> ActionSpec:
    space = ds.store.action_space
    n = getattr(space, "n", None)
    if n is None:
        raise ValueError(f"dataset {ds.store.root}: only discrete action spaces are trained so far, got {space}")
    return ActionSpec(kind="discrete", n=int(n))


# Sections whose change makes existing checkpoints unusable (shapes of the networks).
ARCHITECTURE_KEYS = ("vae", "value.channels", "value.enabled", "denoiser.channels", "denoiser.blocks_per_level", "denoiser.cond_dim",
                     "denoiser.action_embed_dim", "heads.channels", "heads.cond_dim", "data.context_length")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def check_resumable(cfg: ExperimentConfig, saved: Path) -> None:
    """Refuse to resume checkpoints made with other network shapes, naming the keys that differ."""
    import yaml

    old = _flat(yaml.safe_load(saved.read_text()) or {})
    new = _flat(to_dict(cfg))
    diff = [k for k in new if k.startswith(ARCHITECTURE_KEYS) and k in old and old[k] != new[k]]
    if diff:
        details = ", ".join(f"{k}: checkpoint {old[k]!r} vs config {new[k]!r}" for k in diff)
        raise ValueError(f"config does not match the checkpoints in {saved.parent} ({details}); "
                         "use another run_dir or drop --resume")


def train_world_model(cfg: ExperimentConfig, resume: bool = False, progress: bool = True) -> TrainOutput:
    run = Path(cfg.run_dir)
    state = process_state()
    if resume and (run / "config.yaml").is_file():
        check_resumable(cfg, run / "config.yaml")
    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    if state.is_main_process:
        run.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run / "config.yaml")
    train_eps, train_ds = load_split(cfg, "train")
    val_eps, _ = load_split(cfg, "val")
    spec = action_spec_of(train_ds)
    t_start = time.perf_counter()

    # --- stage 1: VAE (skipped on --resume once its final folder exists) ---------------------------
    vae_dir = run / "vae"
    vae_done = resume and (vae_dir / "vae_config.json").is_file()
    if vae_done:
        vae = FrameVAE.from_pretrained(vae_dir)
        vae_rate = float("nan")
        state.print(f"[vae] loaded finished stage from {vae_dir}")
    else:
        res = train_vae(train_eps.obs, val_eps.obs, cfg.vae, cfg.train, run / "stage_vae", resume, progress)
        vae, vae_rate = res.vae, res.samples_per_s
    vae.eval()
    raw = vae.encode_frames(train_eps.obs)  # encode every training frame once: stats + latent cache
    if not vae_done:
        vae.fit_latent_stats(raw)
        if state.is_main_process:
            with atomic_folder(vae_dir) as tmp:
                vae.save_pretrained(tmp)
        state.wait_for_everyone()
    vae_psnr = reconstruction_psnr(vae, val_eps.obs)
    state.print(f"[vae] held-out reconstruction PSNR {vae_psnr:.2f} dB")
    t_vae = time.perf_counter()

    # --- stage 2: denoiser + heads on cached latents -----------------------------------------------
    latents = train_eps.with_obs(vae.normalize(raw))
    dyn = train_dynamics(
        latents, spec.n, cfg.denoiser, cfg.heads, cfg.train, cfg.data.context_length,
        run / "stage_dynamics", resume, progress, cfg.value,
    )
    t_dyn = time.perf_counter()
    meta = {
        "env_id": train_ds.store.manifest.get("env_id"),
        "dataset": str(cfg.data.path),
        "fps": train_ds.store.manifest.get("fps"),
        "val_fraction": cfg.data.val_fraction,
        "split_seed": cfg.data.split_seed,
    }
    model = DiffusionWorldModel(vae, dyn.denoiser, dyn.heads, cfg.sampler, spec, meta=meta, value=dyn.value).eval()
    model_dir = run / "model"
    summary = {
        "train_frames": train_eps.num_frames,
        "val_frames": val_eps.num_frames,
        "vae_params": sum(p.numel() for p in vae.parameters()),
        "denoiser_params": sum(p.numel() for p in dyn.denoiser.parameters()),
        "heads_params": sum(p.numel() for p in dyn.heads.parameters()),
        "vae_val_psnr_db": vae_psnr,
        "vae_train_samples_per_s": vae_rate,
        "dynamics_train_samples_per_s": dyn.samples_per_s,
        "vae_minutes": (t_vae - t_start) / 60,
        "dynamics_minutes": (t_dyn - t_vae) / 60,
        "num_processes": state.num_processes,
    }
    if state.is_main_process:
        model.save_pretrained(model_dir)
        atomic_write_text(run / "train_summary.json", json.dumps(summary, indent=2))
    state.wait_for_everyone()
    return TrainOutput(model=model, model_dir=model_dir, summary=summary)


def process_state() -> PartialState:
    """accelerate's process state, created the way Accelerator will see it (ACCELERATE_USE_CPU=1 under
    torchrun means several CPU processes over gloo; a PartialState made first without it stays single)."""
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="experiment YAML, e.g. configs/cartpole.yaml")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. train.dynamics_steps=2000")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoints in run_dir")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    cfg = load_experiment(args.config, args.overrides)
    out = train_world_model(cfg, resume=args.resume, progress=not args.no_progress)
    if process_state().is_main_process:
        print(json.dumps(out.summary, indent=2))
        print(f"model saved to {out.model_dir}")
    return 0
