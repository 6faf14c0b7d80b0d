"""Action-conditioned EDM denoiser over VAE latents.

Predicts the next latent [B, c, h, w] from K context latents [B, K, c, h, w] and the K actions taken at
those frames [B, K]. Design choices, and why:

* **EDM preconditioning** (Karras et al. 2022, table 1): D(x; sigma) = c_skip x + c_out F(c_in x; c_noise),
  log-normal training sigmas. As DIAMOND (Alonso et al. 2024) shows, EDM stays stable with 1-3 sampler
  steps, which is what makes imagination cheap.
* **Context frames stacked as channels** with the noisy target: the cheapest way to condition a small
  conv net on the past, and it lets every layer compare the target to the context pixel by pixel.
* **Actions (and noise levels) through adaptive GroupNorm in every block**: each of the K actions gets its
  own embedding, concatenated in time order (so the model knows *which* step an action belongs to), mixed
  with the noise embedding by an MLP into one conditioning vector; every ResBlock's norm takes its
  scale/shift from it. Global per-sample conditioning costs two small matmuls per block, far cheaper than
  cross-attention at these sizes, and is what DIAMOND uses.
* **Context noise augmentation** (GameNGen, Valevski et al. 2024; DIAMOND's CS:GO model): during training
  the context latents are corrupted with Gaussian noise of a random level sigma_ctx, which is embedded and
  fed to the model, so that at rollout time the model has learnt to correct the drift of its own outputs.
* **Predicting the change** (`predict_delta`): the target is delta = (z_{t+1} - z_t) * delta_scale, with
  delta_scale = 1 / std(z_{t+1} - z_t) measured on the training data. At 64x64, consecutive CartPole frames
  differ by sub-pixel motion (and 17% are identical), so the absolute latent is almost all "copy the last
  frame"; predicting the normalised change spends the model's precision on what moves, as dynamics models
  that predict state deltas do (PETS, MBPO). `delta_scale` is stored in the config.
* A lean U-Net of our own (two resolutions) rather than diffusers' `UNet2DModel`: at 8x8 latents the
  per-op overhead of the generic block dominates on a CPU (see bench/world_model.py for the comparison).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor, nn

from vidworld.config import check_field, check_sizes
from vidworld.world_models.diffusion.blocks import (
    Downsample,
    FourierFeatures,
    ResBlock,
    Upsample,
    action_embedding,
    group_norm,
)


@dataclass
class DenoiserConfig:
    """Architecture and EDM settings of the denoiser (YAML section `denoiser`)."""

    channels: tuple[int, ...] = (64, 128)  # per resolution level (latent size, /2, ...)
    blocks_per_level: int = 1
    cond_dim: int = 128
    action_embed_dim: int = 32
    sigma_data: float = 1.0  # latents are normalised to unit variance by the VAE
    sigma_mean: float = -0.4  # log-normal training sigmas (EDM P_mean / P_std, DIAMOND's values)
    sigma_std: float = 1.2
    context_noise_max: float = 0.3  # sigma_ctx ~ U(0, max) per sample during training (0 = off)
    predict_delta: bool = False  # denoise the change z_{t+1} - z_t (scaled to unit variance), not z_{t+1}

    def __post_init__(self) -> None:
        check_sizes(self, "channels")
        for name in ("blocks_per_level", "cond_dim", "action_embed_dim"):
            check_field(self, name, ge=1)
        check_field(self, "sigma_data", gt=0)
        check_field(self, "sigma_std", gt=0)
        check_field(self, "context_noise_max", ge=0)


class ActionDenoiser(ModelMixin, ConfigMixin):
    """D(x; sigma | context, actions) with EDM preconditioning. See the module docstring."""

    config_name = "denoiser_config.json"

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 4,
        context_length: int = 4,
        num_actions: int = 2,
        action_dim: int = 0,
        channels: tuple[int, ...] = (64, 128),
        blocks_per_level: int = 1,
        cond_dim: int = 128,
        action_embed_dim: int = 32,
        sigma_data: float = 1.0,
        predict_delta: bool = False,
        delta_scale: float = 1.0,
        history_dim: int = 0,
    ):
        super().__init__()
        if num_actions <= 0 and action_dim <= 0:
            raise ValueError("ActionDenoiser needs num_actions > 0 (discrete) or action_dim > 0 (continuous)")
        c, K = latent_channels, context_length
        # --- conditioning: noise level, context noise level, K actions -> [B, cond_dim]
        self.noise_emb = FourierFeatures(cond_dim)
        self.ctx_noise_emb = FourierFeatures(cond_dim)
        self.action_emb = action_embedding(num_actions, action_dim, action_embed_dim)
        self.cond_mlp = nn.Sequential(
            nn.Linear(2 * cond_dim + K * action_embed_dim + history_dim, cond_dim),
            nn.SiLU(),
            nn.Linear(cond_dim, cond_dim),
        )
        # --- U-Net over [noisy target, K context latents] stacked as channels
        ch = list(channels)
        self.conv_in = nn.Conv2d(c * (K + 1), ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for i, ci in enumerate(ch):
            self.down.append(nn.ModuleList([ResBlock(ci, ci, cond_dim) for _ in range(blocks_per_level)]))
            if i + 1 < len(ch):
                self.downsample.append(Downsample(ci, ch[i + 1]))
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in range(len(ch) - 1, -1, -1):
            blocks = [ResBlock(2 * ch[i] if j == 0 else ch[i], ch[i], cond_dim) for j in range(blocks_per_level)]
            self.up.append(nn.ModuleList(blocks))
            if i > 0:
                self.upsample.append(Upsample(ch[i], ch[i - 1]))
        self.norm_out = group_norm(ch[0])
        self.conv_out = nn.Conv2d(ch[0], c, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    # --- the raw network F ----------------------------------------------------------------------------
    def _cond(self, c_noise: Tensor, ctx_sigma: Tensor, actions: Tensor, history: Tensor | None) -> Tensor:
        a = self.action_emb(actions)  # [B, K, E]
        feats = [self.noise_emb(c_noise), self.ctx_noise_emb(ctx_sigma), a.flatten(1)]
        if self.config.history_dim:
            if history is None or history.shape[-1] != self.config.history_dim:
                raise ValueError(f"this denoiser is conditioned on a history vector [B, {self.config.history_dim}]")
            feats.append(history.to(a.dtype))
        return self.cond_mlp(torch.cat(feats, dim=-1))

    def inner(self, x_in: Tensor, c_noise: Tensor, context: Tensor, actions: Tensor, ctx_sigma: Tensor,
              history: Tensor | None = None) -> Tensor:
        """F: x_in [B, c, h, w], context [B, K, c, h, w], actions [B, K], history [B, history_dim] or None
        -> [B, c, h, w]."""
        cond = self._cond(c_noise, ctx_sigma, actions, history)
        h = self.conv_in(torch.cat([x_in, context.flatten(1, 2)], dim=1))
        skips = []
        for i, blocks in enumerate(self.down):
            for b in blocks:
                h = b(h, cond)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        for i, blocks in enumerate(self.up):
            h = torch.cat([h, skips.pop()], dim=1)
            for b in blocks:
                h = b(h, cond)
            if i < len(self.upsample):
                h = self.upsample[i](h)
        return self.conv_out(torch.nn.functional.silu(self.norm_out(h)))

    # --- EDM preconditioning --------------------------------------------------------------------------
    def forward(
        self,
        noisy: Tensor,
        sigma: Tensor,
        context: Tensor,
        actions: Tensor,
        context_sigma: Tensor | None = None,
        history: Tensor | None = None,
    ) -> Tensor:
        """Denoised estimate D(noisy; sigma) [B, c, h, w].

        noisy [B, c, h, w]; sigma [B] (noise std of `noisy`); context [B, K, c, h, w] normalised latents
        (already noised by `context_sigma` if augmenting); actions [B, K] long (or [B, K, A] float);
        context_sigma [B] (0 at inference unless configured); history [B, history_dim] (history.py) when the
        denoiser was built with history_dim > 0.
        """
        B = noisy.shape[0]
        K = self.config.context_length
        if context.shape[:2] != (B, K) or context.shape[2:] != noisy.shape[1:]:
            raise ValueError(f"context must be [B={B}, K={K}, {tuple(noisy.shape[1:])}], got {tuple(context.shape)}")
        if actions.shape[:2] != (B, K):
            raise ValueError(f"actions must be [B={B}, K={K}], got {tuple(actions.shape)}")
        if context_sigma is None:
            context_sigma = noisy.new_zeros(B)
        sd = self.config.sigma_data
        s = sigma.to(noisy.dtype).view(B, 1, 1, 1)
        c_in = 1.0 / (s**2 + sd**2).sqrt()
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / (s**2 + sd**2).sqrt()
        c_noise = sigma.log() / 4.0
        # the context was scaled like the data it came from; undo the variance its noise added
        ctx = context / (1.0 + context_sigma.view(B, 1, 1, 1, 1) ** 2).sqrt()
        return c_skip * noisy + c_out * self.inner(c_in * noisy, c_noise, ctx, actions, context_sigma, history)


def to_target(denoiser_config, next_latent: Tensor, context: Tensor) -> Tensor:
    """What the denoiser generates for a transition: the next latent, or its scaled change (predict_delta)."""
    if denoiser_config.predict_delta:
        return (next_latent - context[:, -1]) * denoiser_config.delta_scale
    return next_latent


def from_target(denoiser_config, sample: Tensor, context: Tensor) -> Tensor:
    """Inverse of `to_target`: a generated sample [B, c, h, w] -> the next latent."""
    if denoiser_config.predict_delta:
        return context[:, -1] + sample / denoiser_config.delta_scale
    return sample


def edm_loss(
    model: ActionDenoiser,
    target: Tensor,
    context: Tensor,
    actions: Tensor,
    cfg: DenoiserConfig,
    generator: torch.Generator | None = None,
    history: Tensor | None = None,
) -> Tensor:
    """EDM training loss (Karras et al. 2022, eq. 8 with weight lambda(sigma)), with context noise
    augmentation. target [B, c, h, w]; context [B, K, c, h, w]; actions [B, K]. Returns a scalar."""
    B = target.shape[0]
    dev, dt = target.device, target.dtype
    sigma = (torch.randn(B, generator=generator, device=dev) * cfg.sigma_std + cfg.sigma_mean).exp().to(dt)
    noisy = target + sigma.view(B, 1, 1, 1) * torch.randn(target.shape, generator=generator, device=dev, dtype=dt)
    ctx_sigma = torch.rand(B, generator=generator, device=dev, dtype=dt) * cfg.context_noise_max
    ctx = context + ctx_sigma.view(B, 1, 1, 1, 1) * torch.randn(
        context.shape, generator=generator, device=dev, dtype=dt
    )
    denoised = model(noisy, sigma, ctx, actions, ctx_sigma, history)
    sd = cfg.sigma_data
    weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
    # Normalising by c_out^2 (= 1 / weight) makes this the EDM loss on the network's own output F.
    return (weight * (denoised - target).pow(2).flatten(1).mean(1)).mean()
