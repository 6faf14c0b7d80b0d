"""Stage 1: train the frame VAE with accelerate. Reads top to bottom: prepare, accumulate, backward, clip,
step, log, save_state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vidworld.models.vae import FrameVAE, VAEConfig, frames_to_unit
from vidworld.train.checkpoint import (
    GeneratorState,
    TrainProgress,
    make_accelerator,
    resume_if_possible,
    save_checkpoint,
)
from vidworld.train.config import TrainConfig
from vidworld.train.log import WindowMean, append_log
from vidworld.train.optim import adamw, lr_at, set_lr


@dataclass(frozen=True)
class VAEResult:
    vae: FrameVAE
    val_psnr: float  # dB, posterior-mean reconstructions of held-out frames
    samples_per_s: float


@torch.no_grad()
def reconstruction_psnr(vae: FrameVAE, frames: torch.Tensor, batch_size: int = 256) -> float:
    """Mean per-frame PSNR (dB, range [0, 1]) of VAE reconstructions of uint8 frames [N, 3, H, W]."""
    vals = []
    for i in range(0, len(frames), batch_size):
        x = frames[i : i + batch_size].to(vae.device)
        mean, _ = vae.encode(frames_to_unit(x))
        rec = ((vae.decode(mean).clamp(-1, 1) + 1) / 2).float()
        mse = (rec - x.float() / 255).pow(2).flatten(1).mean(1).clamp_min(1e-10)
        vals.append(-10 * torch.log10(mse))
    return float(torch.cat(vals).mean())


def train_vae(
    frames: torch.Tensor,
    val_frames: torch.Tensor,
    vae_cfg: VAEConfig,
    cfg: TrainConfig,
    stage_dir: Path,
    resume: bool = False,
    progress: bool = True,
) -> VAEResult:
    """frames / val_frames: uint8 [N, 3, H, W] in memory. Checkpoints go to stage_dir/checkpoints."""
    import time

    stage_dir.mkdir(parents=True, exist_ok=True)
    acc = make_accelerator(cfg, stage_dir, log_dir=stage_dir / "tb")
    torch.manual_seed(cfg.seed)
    vae = FrameVAE(
        frame_size=frames.shape[-1],
        block_out_channels=tuple(vae_cfg.block_out_channels),
        blocks_per_level=tuple(vae_cfg.blocks_per_level),
        latent_channels=vae_cfg.latent_channels,
    )
    opt = adamw(vae.parameters(), cfg.vae_lr, cfg.weight_decay)
    vae, opt = acc.prepare(vae, opt)
    prog = TrainProgress()
    gen = torch.Generator().manual_seed(cfg.seed + 7919 * acc.process_index)  # batch indices, per process
    acc.register_for_checkpointing(prog, GeneratorState(gen))
    if resume_if_possible(acc, resume):
        acc.print(f"[vae] resumed at step {prog.step}")
    if acc.log_with:
        acc.init_trackers("vae")
    log_file = stage_dir / "log.jsonl"
    bar = tqdm(total=cfg.vae_steps, initial=prog.step, desc="train vae", disable=not (progress and acc.is_main_process))
    t0, n0 = time.perf_counter(), prog.step
    window = WindowMean()
    while prog.step < cfg.vae_steps:
        set_lr(opt, lr_at(prog.step, cfg.vae_lr, cfg.warmup_steps, cfg.vae_steps))
        with acc.accumulate(vae):
            idx = torch.randint(len(frames), (cfg.vae_batch_size,), generator=gen)
            x = frames_to_unit(frames[idx]).to(acc.device)
            recon, kl = vae(x)
            rec_loss = F.mse_loss(recon.float(), x)
            loss = rec_loss + vae_cfg.kl_weight * kl.float().mean()
            acc.backward(loss)
            if acc.sync_gradients and cfg.grad_clip > 0:
                acc.clip_grad_norm_(vae.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        if not acc.sync_gradients:
            continue
        prog.step += 1
        bar.update(1)
        window.add(loss=loss.detach(), rec_mse=rec_loss.detach())
        if prog.step % cfg.log_every == 0 or prog.step == cfg.vae_steps:
            row = {"stage": "vae", "step": prog.step, **window.pop()}
            bar.set_postfix(mse=f"{row['rec_mse']:.5f}")
            if acc.log_with:
                acc.log(row, step=prog.step)
            if acc.is_main_process:
                append_log(log_file, row)
        if prog.step % cfg.checkpoint_every == 0 or prog.step == cfg.vae_steps:
            save_checkpoint(acc, prog.step, cfg.keep_checkpoints)
    bar.close()
    rate = (prog.step - n0) * cfg.vae_batch_size * acc.num_processes / max(time.perf_counter() - t0, 1e-9)
    acc.wait_for_everyone()
    model: FrameVAE = acc.unwrap_model(vae)
    model.eval()
    psnr = reconstruction_psnr(model, val_frames) if len(val_frames) else float("nan")
    for tracker in acc.trackers:  # not acc.end_training(): it also destroys the process group
        tracker.finish()
    return VAEResult(vae=model, val_psnr=psnr, samples_per_s=rate)
