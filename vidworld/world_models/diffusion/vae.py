"""Frame VAE: frames [B, 3, H, W] in [-1, 1] <-> latents [B, c, H/2^L, W/2^L].

A lean diffusers `ModelMixin` of our own rather than `AutoencoderKL`: the same KL-regularised conv
autoencoder idea (Rombach et al. 2022) with one residual block per level and no attention, which is ~4x
cheaper on a CPU at 64x64 and reaches the reconstruction target on our data. Latents are normalised with
a shift and scale measured on the training data (`fit_latent_stats`), as Stable Diffusion 3 does, so the
denoiser sees unit-variance latents (EDM's sigma_data = 1). The same call measures `motion_scale`, 1 / RMS of
the change between consecutive normalised latents of an episode: the model's `features` show an actor that
change at unit scale (world_models/diffusion/model.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor, nn

from vidworld.world_models.diffusion.blocks import Downsample, ResBlock, Upsample, group_norm
from vidworld.config import FieldError, check_field, check_sizes


@dataclass
class VAEConfig:
    """Architecture and training of the frame VAE (YAML section `vae`)."""

    block_out_channels: tuple[int, ...] = (8, 16, 32, 64)  # one level each; len-1 downsamplings
    blocks_per_level: tuple[int, ...] = (0, 1, 1, 1)  # residual blocks per level (full resolution is costly)
    latent_channels: int = 4
    kl_weight: float = 1e-6
    # Reconstruction loss weight of moving pixels: 1 + moving_weight on the moving region (eval/moving.py:
    # pixels that changed since the frame before, 1-px dilated), 1 elsewhere. A 2x2 ball is 0.1% of a 64x64
    # Atari frame; an unweighted MSE lets the VAE drop it for the static background (issue 14).
    moving_weight: float = 0.0

    def __post_init__(self) -> None:
        check_sizes(self, "block_out_channels")
        check_sizes(self, "blocks_per_level", minimum=0)
        if len(self.blocks_per_level) != len(self.block_out_channels):
            raise FieldError("blocks_per_level", f"needs one entry per level of block_out_channels "
                             f"{list(self.block_out_channels)}, got {list(self.blocks_per_level)}")
        check_field(self, "latent_channels", ge=1)
        check_field(self, "kl_weight", ge=0)
        check_field(self, "moving_weight", ge=0)


class FrameVAE(ModelMixin, ConfigMixin):
    """Conv VAE. `encode` -> posterior mean/logvar [B, c, h, w]; `decode` latents -> frames [B, 3, H, W]."""

    config_name = "vae_config.json"

    @register_to_config
    def __init__(
        self,
        frame_size: int = 64,
        block_out_channels: tuple[int, ...] = (16, 32, 64, 128),
        blocks_per_level: tuple[int, ...] | None = None,
        latent_channels: int = 4,
        shift_factor: float = 0.0,
        scaling_factor: float = 1.0,
        motion_scale: float = 0.0,  # 1 / RMS of consecutive normalised latents' change; 0 = not measured
    ):
        super().__init__()
        ch = list(block_out_channels)
        nb = list(blocks_per_level) if blocks_per_level is not None else [1] * len(ch)
        if len(nb) != len(ch):
            raise ValueError(f"blocks_per_level {tuple(nb)} needs one entry per level of {tuple(ch)}")
        down = 2 ** (len(ch) - 1)
        if frame_size % down:
            raise ValueError(f"frame_size {frame_size} must be divisible by {down} (= 2^(levels-1))")
        self.latent_size = frame_size // down
        self.enc_in = nn.Conv2d(3, ch[0], 3, padding=1)
        enc = []
        for i, c in enumerate(ch):
            enc.extend(ResBlock(c, c) for _ in range(nb[i]))
            if i + 1 < len(ch):
                enc.append(Downsample(c, ch[i + 1]))
        self.encoder = nn.ModuleList(enc)
        self.enc_norm = group_norm(ch[-1])
        self.enc_out = nn.Conv2d(ch[-1], 2 * latent_channels, 3, padding=1)

        self.dec_in = nn.Conv2d(latent_channels, ch[-1], 3, padding=1)
        dec = []
        for i in range(len(ch) - 1, -1, -1):
            dec.extend(ResBlock(ch[i], ch[i]) for _ in range(nb[i]))
            if i > 0:
                dec.append(Upsample(ch[i], ch[i - 1]))
        self.decoder = nn.ModuleList(dec)
        self.dec_norm = group_norm(ch[0])
        self.dec_out = nn.Conv2d(ch[0], 3, 3, padding=1)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, 3, H, W] in [-1, 1] -> (mean, logvar), each [B, c, h, w] (unnormalised latents)."""
        assert x.dim() == 4 and x.shape[1] == 3, f"expected frames [B, 3, H, W], got {tuple(x.shape)}"
        h = self.enc_in(x)
        for m in self.encoder:
            h = m(h)
        mean, logvar = self.enc_out(F.silu(self.enc_norm(h))).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: Tensor) -> Tensor:
        """z [B, c, h, w] (unnormalised) -> frames [B, 3, H, W] in about [-1, 1]."""
        h = self.dec_in(z)
        for m in self.decoder:
            h = m(h)
        return self.dec_out(F.silu(self.dec_norm(h)))

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Training pass: returns (reconstruction [B, 3, H, W], kl [B])."""
        mean, logvar = self.encode(x)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + (0.5 * logvar).exp() * eps
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)
        return self.decode(z), kl

    # --- normalised latents: what the denoiser sees --------------------------------------------------
    def frames_to_latents(self, frames: Tensor) -> Tensor:
        """uint8 frames [B, 3, H, W] -> normalised latents [B, c, h, w] (posterior mean)."""
        mean, _ = self.encode(frames_to_unit(frames, self.dtype))
        return self.normalize(mean)

    def decode_normalized(self, latents: Tensor) -> Tensor:
        """normalised latents [B, c, h, w] -> float frames [B, 3, H, W] in about [-1, 1]."""
        return self.decode(latents / self.config.scaling_factor + self.config.shift_factor)

    def latents_to_frames(self, latents: Tensor) -> Tensor:
        """normalised latents [B, c, h, w] -> uint8 frames [B, 3, H, W]."""
        return unit_to_frames(self.decode_normalized(latents))

    @torch.no_grad()
    def encode_frames(self, frames: Tensor, batch_size: int = 512) -> Tensor:
        """uint8 frames [N, 3, H, W] (any device) -> UNnormalised posterior means [N, c, h, w] on CPU."""
        out = []
        for i in range(0, len(frames), batch_size):
            m, _ = self.encode(frames_to_unit(frames[i : i + batch_size].to(self.device), self.dtype))
            out.append(m.float().cpu())
        return torch.cat(out)

    def fit_latent_stats(self, raw_latents: Tensor, previous: Tensor | None = None) -> tuple[float, float]:
        """Set shift (mean) and scale (1/std) from unnormalised latents [N, c, h, w] (`encode_frames`).
        With `previous` (long [N], each frame's predecessor in its episode, itself for a first frame:
        `Episodes.previous_obs_index`) also `motion_scale` = 1 / RMS of (z_i - z_previous[i]) over the frames
        that have a predecessor, in normalised units (left 0 when no frame has one or nothing moves)."""
        shift, std = float(raw_latents.mean()), float(raw_latents.std())
        scale = 1.0 / max(std, 1e-6)
        motion = 0.0
        if previous is not None:
            if previous.shape != raw_latents.shape[:1]:
                raise ValueError(f"previous must be [N={raw_latents.shape[0]}], got {tuple(previous.shape)}")
            moved = previous != torch.arange(len(previous))
            if moved.any():
                idx = moved.nonzero().squeeze(1)
                rms = float((raw_latents[idx] - raw_latents[previous[idx]]).pow(2).mean().sqrt()) * scale
                motion = 1.0 / rms if rms > 1e-8 else 0.0
        self.register_to_config(shift_factor=shift, scaling_factor=scale, motion_scale=motion)
        return shift, scale

    def normalize(self, raw_latents: Tensor) -> Tensor:
        """Unnormalised latents -> what the denoiser sees (unit variance)."""
        return (raw_latents - self.config.shift_factor) * self.config.scaling_factor


def frames_to_unit(frames: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """uint8 [..., 3, H, W] -> float in [-1, 1]."""
    if frames.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames, got dtype {frames.dtype}")
    return frames.to(dtype) / 127.5 - 1.0


def unit_to_frames(x: Tensor) -> Tensor:
    """float in [-1, 1] [..., 3, H, W] -> uint8."""
    return ((x.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
