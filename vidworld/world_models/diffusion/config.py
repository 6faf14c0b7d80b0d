"""The diffusion world model's config section (`diffusion:` in an experiment YAML) and the one mapping from
config to networks, used by training, the benchmark and tests alike.

    diffusion:
      vae: {block_out_channels: [8, 16, 32, 64], latent_channels: 4}
      denoiser: {channels: [64, 128]}
      heads: {channels: [64, 128]}
      value: {enabled: true}
      sampler: {num_steps: 2, sigma_min: 0.283}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vidworld.world_models.diffusion.denoiser import ActionDenoiser, DenoiserConfig
from vidworld.world_models.diffusion.heads import HeadsConfig, RewardTerminationHead
from vidworld.world_models.diffusion.sampler import SamplerConfig
from vidworld.world_models.diffusion.vae import FrameVAE, VAEConfig
from vidworld.world_models.diffusion.value import ValueConfig, ValueHead


@dataclass
class DiffusionConfig:
    vae: VAEConfig = field(default_factory=VAEConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    value: ValueConfig = field(default_factory=ValueConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def build_vae(self, frame_size: int) -> FrameVAE:
        v = self.vae
        return FrameVAE(frame_size=frame_size, block_out_channels=tuple(v.block_out_channels),
                        blocks_per_level=tuple(v.blocks_per_level), latent_channels=v.latent_channels)

    def build_denoiser(self, context_length: int, num_actions: int, delta_scale: float = 1.0) -> ActionDenoiser:
        d = self.denoiser
        return ActionDenoiser(latent_channels=self.vae.latent_channels, context_length=context_length,
                              num_actions=num_actions, channels=tuple(d.channels), blocks_per_level=d.blocks_per_level,
                              cond_dim=d.cond_dim, action_embed_dim=d.action_embed_dim, sigma_data=d.sigma_data,
                              predict_delta=d.predict_delta, delta_scale=delta_scale if d.predict_delta else 1.0)

    def build_heads(self, context_length: int, num_actions: int) -> RewardTerminationHead:
        h = self.heads
        return RewardTerminationHead(latent_channels=self.vae.latent_channels, context_length=context_length,
                                     num_actions=num_actions, channels=tuple(h.channels), cond_dim=h.cond_dim)

    def build_value(self) -> ValueHead | None:
        v = self.value
        if not v.enabled:
            return None
        return ValueHead(latent_channels=self.vae.latent_channels, channels=tuple(v.channels), discount=v.discount)
