"""Train an RSSM world model (kind "rssm") with the shared loop (`vidworld.train.loop`): the world-model
loss of DreamerV3 (Hafner et al. 2023, eq. 4-5) on sequence batches from the episode store.

    loss = mean over [B, T] of  ||decoder(s_t) - x_t||^2 (summed over pixels: a unit Gaussian's NLL)
                              + two-hot symlog CE(reward(s_t), r_t) + BCE(continue(s_t), c_t)
           + dyn_scale * max(free, KL[sg(q) || p]) + rep_scale * max(free, KL[q || sg(p)])
           (+ two-hot symlog CE(value(sg(s_t)), G_t) with a value head: the data policy's discounted return,
            on stopped-gradient features as DreamerV3's critic, so it does not shape the world model)

Called by `vidworld train` through the kind registry. Writes under run_dir:

    stage_rssm/checkpoints   accelerate save_state checkpoints (exact resume), log.jsonl (window means)
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidworld.train.checkpoint import make_accelerator
from vidworld.train.data import TrainData, TrainedModel
from vidworld.train.episodes import Episodes
from vidworld.train.loop import LoopResult, Stage, stage_minutes, train_loop
from vidworld.train.optim import adamw
from vidworld.world_models.diffusion.value import discounted_returns
from vidworld.world_models.rssm.config import RSSMConfig
from vidworld.world_models.rssm.losses import kl_balance, twohot_symlog_loss
from vidworld.world_models.rssm.model import RSSMWorldModel
from vidworld.world_models.rssm.networks import RSSMNetworks
from vidworld.world_models.rssm.sequences import SequenceBatch, SequenceSampler


class RSSMLoss(nn.Module):
    """The networks plus the loss weights, as one module for accelerate.prepare (one DDP wrapper)."""

    def __init__(self, networks: RSSMNetworks, free_nats: float, dyn_scale: float, rep_scale: float):
        super().__init__()
        self.networks = networks
        self.free_nats, self.dyn_scale, self.rep_scale = free_nats, dyn_scale, rep_scale

    def forward(self, frames: Tensor, prev_actions: Tensor, rewards: Tensor, cont: Tensor, is_first: Tensor,
                uniform: Tensor, returns: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """frames uint8 [B, T, 3, S, S], prev_actions long [B, T], rewards / cont float [B, T], is_first
        bool [B, T], uniform [B, T, S] (posterior sampling noise), returns [B, T] (value targets, with a
        value head) -> (scalar loss, logs)."""
        net = self.networks
        onehot = F.one_hot(prev_actions, net.config.num_actions).to(net.dtype)
        deter, stoch, post = net.observe(frames, onehot, is_first, uniform)
        prior = net.prior(deter)  # the dynamics predictor at every step, batched over [B, T]
        feat = torch.cat([deter, stoch], -1).flatten(0, 1)  # [B*T, F]
        target = frames.flatten(0, 1).to(net.dtype) / 255.0 - 0.5
        image = (net.decode(feat) - target).pow(2).flatten(1).sum(1).mean()
        reward_logits, cont_logit = net.heads(feat)
        reward = twohot_symlog_loss(reward_logits, rewards.flatten(), net.bins).mean()
        cont_loss = F.binary_cross_entropy_with_logits(cont_logit, cont.flatten())
        kl_loss, dyn, rep, kl = kl_balance(post, prior, self.free_nats, self.dyn_scale, self.rep_scale)
        loss = image + reward + cont_loss + kl_loss
        pixels = target[0].numel()
        logs = {"image_mse": image.detach() / pixels, "reward_nll": reward.detach(),
                "cont_nll": cont_loss.detach(), "dyn": dyn.detach(), "rep": rep.detach(), "kl": kl}
        if net.has_value and returns is not None:
            value = twohot_symlog_loss(net.value_logits(feat.detach()), returns.flatten(), net.bins).mean()
            loss = loss + value
            logs["value_nll"] = value.detach()
        return loss, logs


def batch_inputs(b: SequenceBatch, stoch: int, generator: torch.Generator, device: torch.device) -> tuple:
    """A sequence batch + its posterior-sampling noise (from the checkpointed batch generator) on device."""
    uniform = torch.rand(*b.prev_actions.shape, stoch, generator=generator)
    parts = (b.frames, b.prev_actions, b.rewards, b.cont, b.is_first, uniform, b.returns)
    return tuple(None if x is None else x.to(device) for x in parts)


def episode_returns(episodes: Episodes, discount: float) -> Tensor:
    """Per-frame discounted Monte-Carlo returns [num_frames]: the diffusion value head's targets (its
    `discounted_returns` is a pure function of the episode arrays)."""
    return discounted_returns(episodes.rewards, episodes.terminated, episodes.lengths, discount)


@torch.no_grad()
def validation_loss(module: RSSMLoss, sampler: SequenceSampler, batch_size: int, batches: int = 4,
                    seed: int = 0) -> dict[str, float]:
    """Mean loss terms on fixed held-out windows (same windows every call)."""
    g = torch.Generator().manual_seed(seed)
    totals: dict[str, float] = {}
    device = next(module.parameters()).device
    for _ in range(batches):
        b = sampler.sample(batch_size, g)
        loss, logs = module(*batch_inputs(b, module.networks.stoch, g, device))
        for k, v in {"loss": loss, **logs}.items():
            totals[k] = totals.get(k, 0.0) + float(v) / batches
    return totals


def fit_rssm(episodes: Episodes, rcfg: RSSMConfig, tcfg, num_actions: int, stage_dir: Path, steps: int,
             returns: Tensor | None = None, resume: bool = False, progress: bool = True
             ) -> tuple[RSSMLoss, LoopResult]:
    """Train (or resume) the RSSM on `episodes` (frames uint8 [N, 3, S, S]) up to `steps` optimizer steps in
    total, checkpointing under stage_dir (the shared loop's exact resume). returns: per-frame value targets
    [num_frames] for a value head (None without one). Used by `vidworld train` and the online learner."""
    sampler = SequenceSampler(episodes, rcfg.seq_len, returns)  # a clear error now if the data is short
    stage_dir.mkdir(parents=True, exist_ok=True)
    acc = make_accelerator(tcfg, stage_dir, log_dir=stage_dir / "tb")
    torch.manual_seed(tcfg.seed)
    networks = rcfg.build(frame_size=episodes.obs.shape[-1], num_actions=num_actions)
    module = RSSMLoss(networks, rcfg.free_nats, rcfg.dyn_scale, rcfg.rep_scale)
    opt = adamw(module.parameters(), rcfg.lr, tcfg.weight_decay)
    module, opt = acc.prepare(module, opt)

    def batch_loss(gen: torch.Generator) -> tuple[Tensor, dict]:
        b = sampler.sample(rcfg.batch_size, gen)
        return module(*batch_inputs(b, networks.stoch, gen, acc.device))

    stage = Stage("rssm", steps, rcfg.batch_size * rcfg.seq_len, rcfg.lr,
                  postfix=(("mse", "image_mse", ".5f"), ("kl", "kl", ".2f"), ("cont", "cont_nll", ".3f")))
    res = train_loop(acc, module, opt, stage, tcfg, batch_loss, resume=resume, progress=progress)
    trained: RSSMLoss = acc.unwrap_model(module)
    return trained.eval(), res


def train_rssm(cfg, data: TrainData, resume: bool = False, progress: bool = True) -> TrainedModel:
    """cfg: the ExperimentConfig (sections `model`, `rssm`, `train`); returns the trained RSSMWorldModel."""
    rcfg: RSSMConfig = cfg.rssm
    tcfg = cfg.train
    t_start = time.perf_counter()
    stage_dir = Path(cfg.run_dir) / "stage_rssm"
    returns = val_returns = None
    if rcfg.value_discount > 0:  # Monte-Carlo returns of the data policy, per frame (as the diffusion value)
        returns = episode_returns(data.train, rcfg.value_discount)
        val_returns = episode_returns(data.val, rcfg.value_discount)
    trained, res = fit_rssm(data.train, rcfg, tcfg, data.action_spec.n, stage_dir, rcfg.train_steps, returns,
                            resume=resume, progress=progress)
    networks = trained.networks
    summary = {"rssm_params": sum(p.numel() for p in networks.parameters()),
               "rssm_train_frames_per_s": res.samples_per_s,
               "rssm_minutes": stage_minutes(time.perf_counter() - t_start, res)}  # summed over resumes
    if data.val.num_frames >= rcfg.seq_len:
        val_sampler = SequenceSampler(data.val, rcfg.seq_len, val_returns)
        val = validation_loss(trained, val_sampler, rcfg.batch_size, seed=tcfg.seed)
        summary.update({f"rssm_val_{k}": v for k, v in val.items()})
    model = RSSMWorldModel(networks, data.action_spec, cfg.model.context_length, meta=data.meta)
    return TrainedModel(model=model.eval(), summary=summary)
