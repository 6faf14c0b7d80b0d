"""Stage 2: train the denoiser (EDM loss with context noise augmentation) and the reward/termination
heads on cached VAE latents, with accelerate and an EMA of the denoiser. Reads top to bottom."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.training_utils import EMAModel
from torch import Tensor, nn
from tqdm.auto import tqdm

from vidworld.models.denoiser import ActionDenoiser, DenoiserConfig, edm_loss, to_target
from vidworld.models.heads import HeadsConfig, RewardTerminationHead, heads_loss
from vidworld.models.value import ValueConfig, ValueHead, discounted_returns
from vidworld.train.checkpoint import (
    GeneratorState,
    TrainProgress,
    make_accelerator,
    resume_if_possible,
    save_checkpoint,
)
from vidworld.train.config import TrainConfig
from vidworld.train.episodes import Episodes, WindowSampler
from vidworld.train.log import WindowMean, append_log
from vidworld.train.optim import adamw, lr_at, set_lr


class DynamicsModule(nn.Module):
    """Denoiser + heads as one module, so one DDP wrapper and one optimizer cover both losses."""

    def __init__(self, denoiser: ActionDenoiser, heads: RewardTerminationHead, dcfg: DenoiserConfig, hcfg: HeadsConfig,
                 value: ValueHead | None = None, value_weight: float = 0.0):
        super().__init__()
        self.denoiser, self.heads, self.value = denoiser, heads, value
        self.value_weight = value_weight
        self.dcfg, self.hcfg = dcfg, hcfg
        self.denoiser_config = denoiser.config  # predict_delta / delta_scale, readable through DDP too

    def forward(self, context: Tensor, actions: Tensor, target: Tensor, reward: Tensor, terminated: Tensor,
                value_target: Tensor | None = None):
        """context [B, K, c, h, w], actions [B, K], target [B, c, h, w] (the next latent), reward [B],
        terminated [B]. The denoiser learns `to_target` (the latent or its scaled change)."""
        d_loss = edm_loss(self.denoiser, to_target(self.denoiser_config, target, context), context, actions, self.dcfg)
        h_loss, logs = heads_loss(self.heads, context, actions, target, reward, terminated, self.hcfg)
        loss = d_loss + h_loss
        if self.value is not None and value_target is not None:
            # in units of the largest possible return 1/(1-discount) (rewards ~1): the value's gradients must
            # not dominate the shared gradient-norm clip of the denoiser
            scale = 1.0 - self.value.config.discount
            v_loss = torch.nn.functional.mse_loss(self.value(target) * scale, value_target * scale)
            loss = loss + self.value_weight * v_loss
            logs["value_mse"] = float(v_loss.detach())
        return loss, {"denoise": float(d_loss.detach()), **logs}


def delta_scale(latents: Episodes) -> float:
    """1 / std of z_{t+1} - z_t over all training transitions (so the denoiser's target has unit variance)."""
    # transition i of episode e is obs index i + e (each episode has one more obs than actions)
    ep = torch.repeat_interleave(torch.arange(len(latents.lengths)), latents.lengths)
    cur = torch.arange(len(latents.actions)) + ep
    return 1.0 / max(float((latents.obs[cur + 1] - latents.obs[cur]).std()), 1e-6)


@dataclass(frozen=True)
class DynamicsResult:
    denoiser: ActionDenoiser  # EMA weights
    heads: RewardTerminationHead
    value: ValueHead | None
    samples_per_s: float


def train_dynamics(
    latents: Episodes,
    num_actions: int,
    dcfg: DenoiserConfig,
    hcfg: HeadsConfig,
    cfg: TrainConfig,
    context_length: int,
    stage_dir: Path,
    resume: bool = False,
    progress: bool = True,
    vcfg: ValueConfig | None = None,
) -> DynamicsResult:
    """`latents.obs` are normalised latents [N, c, h, w]. Checkpoints go to stage_dir/checkpoints."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    acc = make_accelerator(cfg, stage_dir, log_dir=stage_dir / "tb")
    torch.manual_seed(cfg.seed)
    c = latents.obs.shape[1]
    denoiser = ActionDenoiser(
        latent_channels=c,
        context_length=context_length,
        num_actions=num_actions,
        channels=tuple(dcfg.channels),
        blocks_per_level=dcfg.blocks_per_level,
        cond_dim=dcfg.cond_dim,
        action_embed_dim=dcfg.action_embed_dim,
        sigma_data=dcfg.sigma_data,
        predict_delta=dcfg.predict_delta,
        delta_scale=delta_scale(latents) if dcfg.predict_delta else 1.0,
    )
    heads = RewardTerminationHead(
        latent_channels=c,
        context_length=context_length,
        num_actions=num_actions,
        channels=tuple(hcfg.channels),
        cond_dim=hcfg.cond_dim,
    )
    value, returns = None, None
    if vcfg is not None and vcfg.enabled:
        value = ValueHead(latent_channels=c, channels=tuple(vcfg.channels), discount=vcfg.discount)
        returns = discounted_returns(latents.rewards, latents.terminated, latents.lengths, vcfg.discount)
        with torch.no_grad():  # start at the mean return rather than regress ~10s up from 0
            value.out.bias.fill_(float(returns.mean()))
    module = DynamicsModule(denoiser, heads, dcfg, hcfg, value, vcfg.loss_weight if vcfg else 0.0)
    opt = adamw(module.parameters(), cfg.dynamics_lr, cfg.weight_decay)
    module, opt = acc.prepare(module, opt)
    ema = EMAModel(acc.unwrap_model(module).denoiser.parameters(), decay=cfg.ema_decay)
    ema.to(acc.device)
    prog = TrainProgress()
    gen = torch.Generator().manual_seed(cfg.seed + 7919 * acc.process_index)
    acc.register_for_checkpointing(prog, ema, GeneratorState(gen))
    if resume_if_possible(acc, resume):
        acc.print(f"[dynamics] resumed at step {prog.step}")
    if acc.log_with:
        acc.init_trackers("dynamics")
    sampler = WindowSampler(latents, context_length, pad_starts=cfg.pad_episode_starts)
    log_file = stage_dir / "log.jsonl"
    total = cfg.dynamics_steps
    bar = tqdm(total=total, initial=prog.step, desc="train dynamics", disable=not (progress and acc.is_main_process))
    t0, n0 = time.perf_counter(), prog.step
    window = WindowMean()
    while prog.step < total:
        set_lr(opt, lr_at(prog.step, cfg.dynamics_lr, cfg.warmup_steps, total))
        with acc.accumulate(module):
            b = sampler.sample(cfg.dynamics_batch_size, gen)
            loss, logs = module(
                b.context.to(acc.device),
                b.actions.to(acc.device),
                b.target.to(acc.device),
                b.reward.to(acc.device),
                b.terminated.to(acc.device),
                returns[b.target_index].to(acc.device) if returns is not None else None,
            )
            acc.backward(loss)
            if acc.sync_gradients and cfg.grad_clip > 0:
                acc.clip_grad_norm_(module.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        if not acc.sync_gradients:
            continue
        ema.step(acc.unwrap_model(module).denoiser.parameters())
        prog.step += 1
        bar.update(1)
        window.add(loss=loss.detach(), **logs)
        if prog.step % cfg.log_every == 0 or prog.step == total:
            row = {"stage": "dynamics", "step": prog.step, **window.pop()}
            bar.set_postfix(denoise=f"{row['denoise']:.4f}", term=f"{row['term_bce']:.3f}")
            if acc.log_with:
                acc.log(row, step=prog.step)
            if acc.is_main_process:
                append_log(log_file, row)
        if prog.step % cfg.checkpoint_every == 0 or prog.step == total:
            save_checkpoint(acc, prog.step, cfg.keep_checkpoints)
    bar.close()
    rate = (prog.step - n0) * cfg.dynamics_batch_size * acc.num_processes / max(time.perf_counter() - t0, 1e-9)
    acc.wait_for_everyone()
    unwrapped: DynamicsModule = acc.unwrap_model(module)
    final_denoiser = unwrapped.denoiser
    ema.copy_to(final_denoiser.parameters())  # ship the EMA weights (the trained ones are in checkpoints)
    for tracker in acc.trackers:  # not acc.end_training(): it also destroys the process group
        tracker.finish()
    value_head = unwrapped.value.eval() if unwrapped.value is not None else None
    return DynamicsResult(denoiser=final_denoiser.eval(), heads=unwrapped.heads.eval(), value=value_head,
                          samples_per_s=rate)
