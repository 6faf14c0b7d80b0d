"""Train a diffusion world model (kind "diffusion"): the VAE, then denoiser + heads on cached latents.

Called by `vidworld train` (vidworld/train/run.py) through the kind registry, with the episodes already
decoded. Writes under run_dir:

    vae/                     stage-1 result (FrameVAE with measured latent shift/scale)
    stage_vae/checkpoints    accelerate save_state checkpoints of stage 1 (resume), log.jsonl
    stage_dynamics/...       the same for stage 2
"""

from __future__ import annotations

import time
from pathlib import Path

from accelerate import PartialState

from vidworld.atomic import atomic_folder, remove_stale_temps
from vidworld.train.data import TrainData, TrainedModel
from vidworld.train.loop import finished_stage, stage_minutes
from vidworld.world_models.folder import load_part
from vidworld.world_models.diffusion.model import DiffusionWorldModel
from vidworld.world_models.diffusion.train_dynamics import train_dynamics
from vidworld.world_models.diffusion.train_vae import reconstruction_psnr, train_vae
from vidworld.world_models.diffusion.vae import FrameVAE


def train_diffusion(cfg, data: TrainData, resume: bool = False, progress: bool = True) -> TrainedModel:
    """cfg: the ExperimentConfig (sections `model`, `diffusion`, `train`); returns the trained model."""
    run, state, dcfg = Path(cfg.run_dir), PartialState(), cfg.diffusion
    t_start = time.perf_counter()
    if state.is_main_process:
        remove_stale_temps(run, names=("vae",))  # a kill during the vae/ folder write leaves a temp
        remove_stale_temps(run / "stage_vae")  # not entered again once vae/ exists
    state.wait_for_everyone()

    # --- stage 1: VAE (skipped on --resume once its final folder exists) ---------------------------
    vae_dir = run / "vae"
    vae_done = resume and (vae_dir / "vae_config.json").is_file()
    if vae_done:
        vae = load_part(FrameVAE, vae_dir)
        vae_rate, vae_loop = float("nan"), finished_stage(run / "stage_vae")
        state.print(f"[vae] loaded finished stage from {vae_dir}")
    else:
        res = train_vae(data.train.obs, data.val.obs, dcfg, cfg.train, run / "stage_vae", resume, progress,
                        previous=data.train.previous_obs_index())
        vae, vae_rate, vae_loop = res.vae, res.samples_per_s, res.loop
    vae.eval()
    raw = vae.encode_frames(data.train.obs)  # encode every training frame once: stats + latent cache
    if not vae_done:
        vae.fit_latent_stats(raw, data.train.previous_obs_index())
        if state.is_main_process:
            with atomic_folder(vae_dir) as tmp:
                vae.save_pretrained(tmp)
        state.wait_for_everyone()
    vae_psnr = reconstruction_psnr(vae, data.val.obs)
    state.print(f"[vae] held-out reconstruction PSNR {vae_psnr:.2f} dB")
    t_vae = time.perf_counter()

    # --- stage 2: denoiser + heads on cached latents -----------------------------------------------
    latents = data.train.with_obs(vae.normalize(raw))
    dyn = train_dynamics(latents, data.action_spec.n, cfg.model.context_length, dcfg, cfg.train,
                         run / "stage_dynamics", resume, progress)
    t_dyn = time.perf_counter()
    model = DiffusionWorldModel(vae, dyn.denoiser, dyn.heads, dcfg.sampler, data.action_spec, meta=data.meta,
                                value=dyn.value, history=dyn.history, static_gate=dyn.static_gate).eval()
    summary = {
        "vae_params": sum(p.numel() for p in vae.parameters()),
        "denoiser_params": sum(p.numel() for p in dyn.denoiser.parameters()),
        "heads_params": sum(p.numel() for p in dyn.heads.parameters()),
        "history_params": sum(p.numel() for p in dyn.history.parameters()) if dyn.history is not None else 0,
        "vae_val_psnr_db": vae_psnr,
        "vae_train_samples_per_s": vae_rate,
        "dynamics_train_samples_per_s": dyn.samples_per_s,
        # minutes to train each stage from scratch, summed over resumes (a stage loaded finished counts what
        # its loop took then)
        "vae_minutes": stage_minutes(t_vae - t_start, vae_loop),
        "dynamics_minutes": stage_minutes(t_dyn - t_vae, dyn.loop),
    }
    return TrainedModel(model=model, summary=summary)
