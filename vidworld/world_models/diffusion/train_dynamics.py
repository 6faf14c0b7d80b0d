"""Stage 2: train the denoiser (EDM loss with context noise augmentation), the reward/termination heads and
the optional value head and static gate on cached VAE latents, with an EMA of the denoiser, by the shared
loop (`vidworld.train.loop`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.training_utils import EMAModel
from torch import Tensor, nn

from vidworld.train.checkpoint import make_accelerator
from vidworld.train.config import TrainConfig
from vidworld.train.episodes import Episodes, WindowSampler
from vidworld.train.loop import LoopResult, Stage, train_loop
from vidworld.train.optim import adamw
from vidworld.world_models.diffusion.config import DiffusionConfig
from vidworld.world_models.diffusion.denoiser import ActionDenoiser, DenoiserConfig, edm_loss, to_target
from vidworld.world_models.diffusion.heads import HeadsConfig, RewardTerminationHead, heads_loss
from vidworld.world_models.diffusion.history import HistoryEncoder
from vidworld.world_models.diffusion.static_gate import StaticGate, StaticGateConfig, static_gate_loss
from vidworld.world_models.diffusion.value import ValueHead, discounted_returns


class DynamicsModule(nn.Module):
    """Denoiser + heads (+ value, history, static gate) as one module, so one DDP wrapper and one optimizer
    cover every loss."""

    def __init__(self, denoiser: ActionDenoiser, heads: RewardTerminationHead, dcfg: DenoiserConfig, hcfg: HeadsConfig,
                 value: ValueHead | None = None, value_weight: float = 0.0,
                 history: HistoryEncoder | None = None, static_gate: StaticGate | None = None,
                 gcfg: StaticGateConfig | None = None):
        super().__init__()
        self.denoiser, self.heads, self.value, self.history = denoiser, heads, value, history
        self.static_gate = static_gate
        self.value_weight = value_weight
        self.dcfg, self.hcfg, self.gcfg = dcfg, hcfg, gcfg or StaticGateConfig()
        self.denoiser_config = denoiser.config  # predict_delta / delta_scale, readable through DDP too

    def forward(self, context: Tensor, actions: Tensor, target: Tensor, reward: Tensor, terminated: Tensor,
                value_target: Tensor | None = None):
        """context [B, M, c, h, w] (M >= the denoiser's K: a longer window feeds the history encoder), actions
        [B, M] (the last one leads to target), target [B, c, h, w] (the next latent), reward [B], terminated [B].
        The denoiser learns `to_target` (the latent or its scaled change) from the last K latents."""
        K = self.denoiser_config.context_length
        hist = self.history(context, actions[:, :-1]) if self.history is not None else None
        ctx, acts = context[:, -K:], actions[:, -K:]
        d_loss = edm_loss(self.denoiser, to_target(self.denoiser_config, target, ctx), ctx, acts, self.dcfg,
                          history=hist)
        h_loss, logs = heads_loss(self.heads, ctx, acts, target, reward, terminated, self.hcfg, history=hist)
        loss = d_loss + h_loss
        if self.static_gate is not None:
            g_loss, g_logs = static_gate_loss(self.static_gate, ctx, acts, target, self.gcfg, history=hist)
            loss = loss + self.gcfg.loss_weight * g_loss
            logs.update(g_logs)
        if self.value is not None and value_target is not None:
            # in units of the largest possible return 1/(1-discount) (rewards ~1): the value's gradients must
            # not dominate the shared gradient-norm clip of the denoiser
            scale = 1.0 - self.value.config.discount
            # the value is of the NEXT state: its history is the window shifted by one step
            nxt_hist = None if self.history is None else self.history(
                torch.cat([context[:, 1:], target[:, None]], 1), actions[:, 1:])
            v_loss = torch.nn.functional.mse_loss(self.value(target, nxt_hist) * scale, value_target * scale)
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
    history: HistoryEncoder | None = None
    static_gate: StaticGate | None = None
    loop: LoopResult | None = None  # the training loop's steps and time (this call, and summed over resumes)


def train_dynamics(
    latents: Episodes,
    num_actions: int,
    context_length: int,
    dcfg: DiffusionConfig,
    cfg: TrainConfig,
    stage_dir: Path,
    resume: bool = False,
    progress: bool = True,
) -> DynamicsResult:
    """`latents.obs` are normalised latents [N, c, h, w]. Checkpoints go to stage_dir/checkpoints."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    acc = make_accelerator(cfg, stage_dir, log_dir=stage_dir / "tb")
    torch.manual_seed(cfg.seed)
    vcfg = dcfg.value
    denoiser = dcfg.build_denoiser(context_length, num_actions,
                                   delta_scale(latents) if dcfg.denoiser.predict_delta else 1.0)
    heads = dcfg.build_heads(context_length, num_actions)
    value, returns = dcfg.build_value(), None
    if value is not None:
        returns = discounted_returns(latents.rewards, latents.terminated, latents.lengths, vcfg.discount)
        with torch.no_grad():  # start at the mean return rather than regress ~10s up from 0
            value.out.bias.fill_(float(returns.mean()))
    history = dcfg.build_history(latents.obs.shape[-1], num_actions, context_length)
    static_gate = dcfg.build_static_gate(context_length, num_actions)
    module = DynamicsModule(denoiser, heads, dcfg.denoiser, dcfg.heads, value, vcfg.loss_weight, history,
                            static_gate, dcfg.static_gate)
    opt = adamw(module.parameters(), cfg.dynamics_lr, cfg.weight_decay)
    module, opt = acc.prepare(module, opt)
    ema = EMAModel(ema_parameters(acc.unwrap_model(module)), decay=cfg.ema_decay)
    ema.to(acc.device)
    sampler = WindowSampler(latents, dcfg.memory_length(context_length), pad_starts=cfg.pad_episode_starts)

    def batch_loss(gen: torch.Generator) -> tuple[Tensor, dict]:
        b = sampler.sample(cfg.dynamics_batch_size, gen)
        return module(
            b.context.to(acc.device),
            b.actions.to(acc.device),
            b.target.to(acc.device),
            b.reward.to(acc.device),
            b.terminated.to(acc.device),
            returns[b.target_index].to(acc.device) if returns is not None else None,
        )

    stage = Stage("dynamics", cfg.dynamics_steps, cfg.dynamics_batch_size, cfg.dynamics_lr,
                  postfix=(("denoise", "denoise", ".4f"), ("term", "term_bce", ".3f"),
                           ("static", "static_acc", ".3f")))
    res = train_loop(acc, module, opt, stage, cfg, batch_loss, resume=resume, progress=progress,
                     checkpointables=(ema,), after_step=lambda: ema.step(ema_parameters(acc.unwrap_model(module))))
    unwrapped: DynamicsModule = acc.unwrap_model(module)
    final_denoiser = unwrapped.denoiser
    ema.copy_to(ema_parameters(unwrapped))  # ship the EMA weights (the trained ones are in checkpoints)
    value_head = unwrapped.value.eval() if unwrapped.value is not None else None
    history_enc = unwrapped.history.eval() if unwrapped.history is not None else None
    gate = unwrapped.static_gate.eval() if unwrapped.static_gate is not None else None
    return DynamicsResult(denoiser=final_denoiser.eval(), heads=unwrapped.heads.eval(), value=value_head,
                          samples_per_s=res.samples_per_s, history=history_enc, static_gate=gate,
                          loop=res)


def ema_parameters(module: DynamicsModule) -> list[nn.Parameter]:
    """What the EMA averages: the denoiser, and the history encoder that conditions it (sampled together)."""
    params = list(module.denoiser.parameters())
    return params + list(module.history.parameters()) if module.history is not None else params
