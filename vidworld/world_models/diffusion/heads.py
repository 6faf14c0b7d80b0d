"""Reward and termination heads: (context latents, actions, next latent) -> (reward, termination logit).

A small conv net over [K context latents, next latent] stacked as channels, conditioned on the K actions
through adaptive GroupNorm, pooled to a vector. Seeing both sides of the transition lets it judge the
*result* of the action (in CartPole: did the pole pass 12 degrees), as DIAMOND's reward/end model does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor, nn

from vidworld.config import check_field, check_sizes
from vidworld.world_models.diffusion.blocks import ActionConditionedTrunk


@dataclass
class HeadsConfig:
    """Reward/termination head (YAML section `heads`)."""

    channels: tuple[int, ...] = (64, 128)
    cond_dim: int = 64
    termination_pos_weight: float = 4.0  # episode ends are rare (~1 in 22 steps for random CartPole)
    reward_weight: float = 1.0

    def __post_init__(self) -> None:
        check_sizes(self, "channels")
        check_field(self, "cond_dim", ge=1)
        check_field(self, "termination_pos_weight", gt=0)
        check_field(self, "reward_weight", ge=0)


class RewardTerminationHead(ActionConditionedTrunk, ModelMixin, ConfigMixin):
    """forward(context [B,K,c,h,w], actions [B,K], next_latent [B,c,h,w]) -> (reward [B], term_logit [B])."""

    config_name = "heads_config.json"

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 4,
        context_length: int = 4,
        num_actions: int = 2,
        action_dim: int = 0,
        channels: tuple[int, ...] = (64, 128),
        cond_dim: int = 64,
        history_dim: int = 0,
    ):
        super().__init__()
        c, K = latent_channels, context_length
        self._build_trunk(c * (K + 1), K, num_actions, action_dim, channels, cond_dim, history_dim)
        self.out = nn.Sequential(nn.Linear(channels[-1], cond_dim), nn.SiLU(), nn.Linear(cond_dim, 2))

    def forward(self, context: Tensor, actions: Tensor, next_latent: Tensor, history: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """history [B, history_dim] when built with history_dim > 0 (see history.py), else None."""
        B, K = context.shape[:2]
        assert next_latent.shape == (B, *context.shape[2:]), "next_latent must be [B, c, h, w] like the context"
        h = self._trunk(torch.cat([context.flatten(1, 2), next_latent], dim=1), actions, history, "these heads are")
        reward, term_logit = self.out(h).unbind(-1)
        return reward, term_logit


def heads_loss(
    head: nn.Module,
    context: Tensor,
    actions: Tensor,
    next_latent: Tensor,
    reward: Tensor,
    terminated: Tensor,
    cfg: HeadsConfig,
    history: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """MSE on reward + class-weighted BCE on termination. Returns (loss, logs)."""
    pred_r, logit = head(context, actions, next_latent, history)
    r_loss = F.mse_loss(pred_r, reward.float())
    pos_weight = torch.tensor(cfg.termination_pos_weight, device=logit.device, dtype=logit.dtype)
    t_loss = F.binary_cross_entropy_with_logits(logit, terminated.float(), pos_weight=pos_weight)
    loss = cfg.reward_weight * r_loss + t_loss
    return loss, {"reward_mse": float(r_loss.detach()), "term_bce": float(t_loss.detach())}
