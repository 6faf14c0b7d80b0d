"""Static gate: an exact "nothing changed" path for the diffusion world model.

In grid worlds many actions leave the frame exactly unchanged (walking into a wall; pickup, drop, toggle or
done in an empty room). Copying the last frame gets those transitions exactly right; a few-step diffusion
sampler only gets them approximately, and on MiniGrid the model lost to copy-last on PSNR at every horizon.
The gate is a small classifier of p(next frame == newest context frame | K context latents, K actions incl.
the one being taken). Where p > threshold, `DiffusionWorldModel.step` returns the newest latent exactly
instead of the sampled one (batched, `torch.where`). It sees only the context, never a sample: it decides
*before* the sampler's output is known, so a noisy sample cannot talk it out of an obvious no-op.

Training target (`unchanged_target`): the next latent equals the newest context latent within 1e-6. The
VAE encodes identical frames to identical latents, so this is "the frame did not change" on cached latents.
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

UNCHANGED_ATOL = 1e-6


@dataclass
class StaticGateConfig:
    """YAML section `diffusion.static_gate`: off by default (CartPole frames always change)."""

    enabled: bool = False
    channels: tuple[int, ...] = (32, 64)
    cond_dim: int = 32
    threshold: float = 0.5  # copy the newest latent where p(unchanged) > threshold
    loss_weight: float = 1.0
    pos_weight: float = 1.0  # BCE weight of the "unchanged" class (raise it when no-ops are rare)

    def __post_init__(self) -> None:
        check_sizes(self, "channels")
        check_field(self, "cond_dim", ge=1)
        check_field(self, "threshold", gt=0, lt=1)
        check_field(self, "loss_weight", ge=0)
        check_field(self, "pos_weight", gt=0)


class StaticGate(ActionConditionedTrunk, ModelMixin, ConfigMixin):
    """forward(context [B,K,c,h,w], actions [B,K], history [B,history_dim] | None) -> logit [B] of
    "the next latent equals context[:, -1]".

    Like `RewardTerminationHead` but over the K context latents only: conv_in over the c*K stacked channels,
    ResBlocks with adaptive GroupNorm conditioned on the K action embeddings (+ history), mean-pooled, linear.
    """

    config_name = "static_gate_config.json"

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 4,
        context_length: int = 4,
        num_actions: int = 2,
        action_dim: int = 0,
        channels: tuple[int, ...] = (32, 64),
        cond_dim: int = 32,
        history_dim: int = 0,
        threshold: float = 0.5,
    ):
        super().__init__()
        if not 0 < threshold < 1:
            raise ValueError(f"static gate threshold must be in (0, 1), got {threshold}")
        c, K = latent_channels, context_length
        self._build_trunk(c * K, K, num_actions, action_dim, channels, cond_dim, history_dim)
        self.out = nn.Sequential(nn.Linear(channels[-1], cond_dim), nn.SiLU(), nn.Linear(cond_dim, 1))
        with torch.no_grad():  # an untrained gate says "changed" (p ~ 0.12): it falls back to the sampler
            self.out[-1].bias.fill_(-2.0)

    def forward(self, context: Tensor, actions: Tensor, history: Tensor | None = None) -> Tensor:
        B, K = context.shape[:2]
        assert K == self.config.context_length and actions.shape[:2] == (B, K), \
            f"static gate takes context [B, K={self.config.context_length}, c, h, w] and actions [B, K]"
        h = self._trunk(context.flatten(1, 2), actions, history, "this static gate is")
        return self.out(h).squeeze(-1)


def unchanged_target(last_latent: Tensor, next_latent: Tensor) -> Tensor:
    """last_latent, next_latent [B, c, h, w] -> bool [B]: every element equal within 1e-6 (absolute)."""
    assert last_latent.shape == next_latent.shape, "unchanged_target compares latents of the same shape"
    return ((next_latent - last_latent).abs() <= UNCHANGED_ATOL).flatten(1).all(1)


def static_gate_loss(
    gate: nn.Module, context: Tensor, actions: Tensor, target: Tensor, cfg: StaticGateConfig,
    history: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Class-weighted BCE of the gate's logit against "target == context[:, -1]". Returns (loss, logs) with
    `static_bce` and `static_acc` (accuracy of the decision `step` takes: p > threshold)."""
    logit = gate(context, actions, history)
    label = unchanged_target(context[:, -1], target)
    pos_weight = torch.tensor(cfg.pos_weight, device=logit.device, dtype=logit.dtype)
    loss = F.binary_cross_entropy_with_logits(logit, label.to(logit.dtype), pos_weight=pos_weight)
    acc = ((torch.sigmoid(logit.detach()) > cfg.threshold) == label).float().mean()
    return loss, {"static_bce": float(loss.detach()), "static_acc": float(acc)}
