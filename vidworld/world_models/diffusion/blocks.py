"""Small conv building blocks shared by the VAE, the denoiser and the heads.

At 8x8-64x64 resolutions on a CPU, per-op overhead is a large share of the time, so these blocks are lean:
GroupNorm -> SiLU -> conv3x3, twice, with a residual; conditioning enters through adaptive GroupNorm
(a per-sample scale and shift computed from a conditioning vector, as in DIAMOND / ADM's AdaGN).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def group_norm(channels: int) -> nn.GroupNorm:
    groups = min(32, channels // 4) if channels >= 8 else 1
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels, eps=1e-5)


def action_embedding(num_actions: int, action_dim: int, dim: int) -> nn.Module:
    """Per-step action embedding [B, K] long -> [B, K, dim] (discrete: a lookup table), or [B, K, action_dim]
    float -> [B, K, dim] (continuous: a linear map; kept possible by design)."""
    if num_actions > 0:
        return nn.Embedding(num_actions, dim)
    if action_dim > 0:
        return nn.Linear(action_dim, dim)
    raise ValueError("need num_actions > 0 (discrete) or action_dim > 0 (continuous)")


class FourierFeatures(nn.Module):
    """Random Fourier features of a scalar (EDM's noise embedding): [B] -> [B, dim]."""

    def __init__(self, dim: int, scale: float = 16.0):
        super().__init__()
        assert dim % 2 == 0, "FourierFeatures dim must be even"
        self.register_buffer("weight", torch.randn(1, dim // 2) * scale)

    def forward(self, x: Tensor) -> Tensor:
        f = 2 * math.pi * x[:, None].float() @ self.weight
        return torch.cat([f.cos(), f.sin()], dim=-1)


class AdaGroupNorm(nn.Module):
    """GroupNorm whose affine parameters are predicted from a conditioning vector [B, cond_dim]."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.norm.weight = None  # affine comes from the conditioning
        self.norm.bias = None
        self.linear = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        scale, shift = self.linear(cond)[:, :, None, None].chunk(2, dim=1)
        return self.norm(x) * (1 + scale) + shift


class ResBlock(nn.Module):
    """x [B, C_in, h, w] (+ cond [B, D]) -> [B, C_out, h, w]. Unconditioned when cond_dim == 0."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int = 0):
        super().__init__()
        self.cond_dim = cond_dim
        if cond_dim:
            self.norm1 = AdaGroupNorm(in_ch, cond_dim)
            self.norm2 = AdaGroupNorm(out_ch, cond_dim)
        else:
            self.norm1 = group_norm(in_ch)
            self.norm2 = group_norm(out_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # start as identity: stable deep residual training
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def _norm(self, norm: nn.Module, x: Tensor, cond: Tensor | None) -> Tensor:
        return norm(x, cond) if self.cond_dim else norm(x)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        h = self.conv1(F.silu(self._norm(self.norm1, x, cond)))
        h = self.conv2(F.silu(self._norm(self.norm2, h, cond)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """[B, C, h, w] -> [B, C_out, h/2, w/2] with a strided conv."""

    def __init__(self, in_ch: int, out_ch: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch or in_ch, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """[B, C, h, w] -> [B, C_out, 2h, 2w]: nearest neighbour then conv (no checkerboard artefacts)."""

    def __init__(self, in_ch: int, out_ch: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch or in_ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ActionConditionedTrunk:
    """Mixin of the action-conditioned conv classifiers (the reward/termination heads, the static gate): K
    action embeddings (+ a history vector) -> one conditioning vector; input channels -> conv_in -> ResBlocks
    with AdaGN and Downsamples -> GroupNorm, SiLU, mean pool -> [B, channels[-1]]. The layers are attributes of
    the module itself (action_emb, cond_mlp, conv_in, blocks, norm), so saved weights keep their names."""

    def _build_trunk(self, in_channels: int, context_length: int, num_actions: int, action_dim: int,
                     channels: tuple[int, ...], cond_dim: int, history_dim: int) -> None:
        self.action_emb = action_embedding(num_actions, action_dim, cond_dim)
        self.cond_mlp = nn.Sequential(nn.Linear(context_length * cond_dim + history_dim, cond_dim), nn.SiLU(),
                                      nn.Linear(cond_dim, cond_dim))
        ch = list(channels)
        self.conv_in = nn.Conv2d(in_channels, ch[0], 3, padding=1)
        layers: list[nn.Module] = []
        for i, ci in enumerate(ch):
            layers.append(ResBlock(ci, ci, cond_dim))
            if i + 1 < len(ch):
                layers.append(Downsample(ci, ch[i + 1]))
        self.blocks = nn.ModuleList(layers)
        self.norm = group_norm(ch[-1])

    def _trunk(self, x: Tensor, actions: Tensor, history: Tensor | None, what: str) -> Tensor:
        """x [B, in_channels, h, w], actions [B, K], history [B, history_dim] or None -> pooled [B, channels[-1]]."""
        feats = self.action_emb(actions).flatten(1)
        if self.config.history_dim:
            if history is None:
                raise ValueError(f"{what} conditioned on a history vector [B, {self.config.history_dim}]")
            feats = torch.cat([feats, history.to(feats.dtype)], -1)
        cond = self.cond_mlp(feats)
        h = self.conv_in(x)
        for m in self.blocks:
            h = m(h, cond) if isinstance(m, ResBlock) else m(h)
        return F.silu(self.norm(h)).mean(dim=(2, 3))
