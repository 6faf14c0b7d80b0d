"""State-value head: one normalised latent [B, c, h, w] -> value [B].

Trained on Monte-Carlo discounted returns of the data-collection policy, V(s) = E[sum_k gamma^k r_{t+k}].
A planner uses it as the terminal value of its imagined horizon (as TD-MPC and MuZero use learned values):
with CartPole's "+1 until you fall" reward, returns inside a short horizon barely differ between a
balanced pole and one about to become unrecoverable; the value tells them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor, nn

from vidworld.world_models.diffusion.blocks import Downsample, ResBlock, group_norm


@dataclass
class ValueConfig:
    """YAML section `value`."""

    enabled: bool = True
    channels: tuple[int, ...] = (32, 64)
    discount: float = 0.95  # of the Monte-Carlo return targets (~20-step horizon)
    loss_weight: float = 0.1


class ValueHead(ModelMixin, ConfigMixin):
    config_name = "value_config.json"

    @register_to_config
    def __init__(self, latent_channels: int = 4, channels: tuple[int, ...] = (32, 64), discount: float = 0.95,
                 history_dim: int = 0):
        super().__init__()
        ch = list(channels)
        layers: list[nn.Module] = [nn.Conv2d(latent_channels, ch[0], 3, padding=1)]
        for i, c in enumerate(ch):
            layers.append(ResBlock(c, c))
            if i + 1 < len(ch):
                layers.append(Downsample(c, ch[i + 1]))
        self.body = nn.Sequential(*layers)
        self.norm = group_norm(ch[-1])
        self.out = nn.Linear(ch[-1] + history_dim, 1)

    def forward(self, latent: Tensor, history: Tensor | None = None) -> Tensor:
        """latent [B, c, h, w] (+ history [B, history_dim] if built with one) -> value [B] (discounted reward)."""
        h = F.silu(self.norm(self.body(latent))).mean(dim=(2, 3))
        if self.config.history_dim:
            if history is None:
                raise ValueError(f"this value head is conditioned on a history vector [B, {self.config.history_dim}]")
            h = torch.cat([h, history.to(h.dtype)], -1)
        return self.out(h).squeeze(-1)


def discounted_returns(rewards: Tensor, terminated: Tensor, lengths: Tensor, discount: float) -> Tensor:
    """Per-observation Monte-Carlo returns for flat episodes (see train.episodes.Episodes).

    rewards, terminated: [sum N_e]; lengths [E]. Returns [sum (N_e + 1)]: G at each observation, with
    G = 0 at an episode's last observation (terminal, or the end of the collected data).
    """
    out = []
    start = 0
    for n in lengths.tolist():  # one pass per episode; runs once before training
        r, d = rewards[start : start + n].double(), terminated[start : start + n]
        g = torch.zeros(n + 1, dtype=torch.float64)
        for t in range(n - 1, -1, -1):
            g[t] = r[t] + (0.0 if bool(d[t]) else discount * g[t + 1])
        out.append(g.float())
        start += n
    return torch.cat(out)
