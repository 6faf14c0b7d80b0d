"""Diffusion stage 1: the frame VAE, trained by the shared loop (`vidworld.train.loop`): build, prepare,
then `train_loop` with a reconstruction + KL loss on random training frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from vidworld.eval.moving import moving_mask
from vidworld.train.checkpoint import make_accelerator
from vidworld.train.config import TrainConfig
from vidworld.train.loop import LoopResult, Stage, train_loop
from vidworld.train.optim import adamw
from vidworld.world_models.diffusion.config import DiffusionConfig
from vidworld.world_models.diffusion.vae import FrameVAE, frames_to_unit


@dataclass(frozen=True)
class VAEResult:
    vae: FrameVAE
    val_psnr: float  # dB, posterior-mean reconstructions of held-out frames
    samples_per_s: float
    loop: LoopResult | None = None  # the training loop's steps and time (this call, and summed over resumes)


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
    dcfg: DiffusionConfig,
    cfg: TrainConfig,
    stage_dir: Path,
    resume: bool = False,
    progress: bool = True,
    previous: torch.Tensor | None = None,
) -> VAEResult:
    """frames / val_frames: uint8 [N, 3, H, W] in memory. Checkpoints go to stage_dir/checkpoints.

    previous: long [N], the index of each frame's predecessor in its episode (`Episodes.previous_obs_index`);
    needed when `vae.moving_weight` > 0, to find the moving pixels of each training frame."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    acc = make_accelerator(cfg, stage_dir, log_dir=stage_dir / "tb")
    torch.manual_seed(cfg.seed)
    vae = dcfg.build_vae(frame_size=frames.shape[-1])
    opt = adamw(vae.parameters(), cfg.vae_lr, cfg.weight_decay)
    vae, opt = acc.prepare(vae, opt)
    kl_weight, moving_weight = dcfg.vae.kl_weight, dcfg.vae.moving_weight
    if moving_weight > 0 and (previous is None or previous.shape != (len(frames),)):
        raise ValueError(f"vae.moving_weight={moving_weight} needs each frame's predecessor index [N={len(frames)}] "
                         f"(train_vae(previous=...)), got {None if previous is None else tuple(previous.shape)}")

    def batch_loss(gen: torch.Generator) -> tuple[torch.Tensor, dict]:
        idx = torch.randint(len(frames), (cfg.vae_batch_size,), generator=gen)
        x = frames_to_unit(frames[idx]).to(acc.device)
        recon, kl = vae(x)
        rec_loss = F.mse_loss(recon.float(), x)
        logs = {"rec_mse": rec_loss.detach()}
        if moving_weight > 0:
            se = (recon.float() - x).pow(2)  # [B, 3, H, W]
            mask = moving_mask(frames[previous[idx]], frames[idx]).to(acc.device)  # [B, H, W]
            weighted = ((1.0 + moving_weight * mask[:, None].float()) * se).mean()
            moving = mask.sum().clamp_min(1)
            logs["moving_mse"] = (se.mean(1) * mask).sum().detach() / moving
            return weighted + kl_weight * kl.float().mean(), logs
        return rec_loss + kl_weight * kl.float().mean(), logs

    stage = Stage("vae", cfg.vae_steps, cfg.vae_batch_size, cfg.vae_lr, postfix=(("mse", "rec_mse", ".5f"),))
    res = train_loop(acc, vae, opt, stage, cfg, batch_loss, resume=resume, progress=progress)
    model: FrameVAE = acc.unwrap_model(vae)
    model.eval()
    psnr = reconstruction_psnr(model, val_frames) if len(val_frames) else float("nan")
    return VAEResult(vae=model, val_psnr=psnr, samples_per_s=res.samples_per_s, loop=res)
