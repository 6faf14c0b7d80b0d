"""The diffusion world model's config section (`diffusion:` in an experiment YAML) and the one mapping from
config to networks, used by training, the benchmark and tests alike.

    diffusion:
      vae: {block_out_channels: [8, 16, 32, 64], latent_channels: 4}
      denoiser: {channels: [64, 128]}
      heads: {channels: [64, 128]}
      value: {enabled: true}
      sampler: {num_steps: 2, sigma_min: 0.283}
      history: {enabled: false, length: 16}   # a transformer over a longer past (history.py)
      static_gate: {enabled: false, threshold: 0.5}   # exact copy where p(frame unchanged) > 0.5
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vidworld.world_models.diffusion.denoiser import ActionDenoiser, DenoiserConfig
from vidworld.world_models.diffusion.heads import HeadsConfig, RewardTerminationHead
from vidworld.world_models.diffusion.history import HistoryConfig, HistoryEncoder
from vidworld.world_models.diffusion.sampler import SamplerConfig
from vidworld.world_models.diffusion.static_gate import StaticGate, StaticGateConfig
from vidworld.world_models.diffusion.vae import FrameVAE, VAEConfig
from vidworld.world_models.diffusion.value import ValueConfig, ValueHead


@dataclass
class DiffusionConfig:
    vae: VAEConfig = field(default_factory=VAEConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    value: ValueConfig = field(default_factory=ValueConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    static_gate: StaticGateConfig = field(default_factory=StaticGateConfig)

    @property
    def history_dim(self) -> int:
        return self.history.dim if self.history.enabled else 0

    def memory_length(self, context_length: int) -> int:
        """Frames a state keeps: the denoiser's K, or the history's L when that is longer."""
        return max(context_length, self.history.length) if self.history.enabled else context_length

    def build_history(self, latent_size: int, num_actions: int, context_length: int) -> HistoryEncoder | None:
        h = self.history
        if not h.enabled:
            return None
        return HistoryEncoder(latent_channels=self.vae.latent_channels, latent_size=latent_size,
                              num_actions=num_actions, length=self.memory_length(context_length), dim=h.dim,
                              layers=h.layers, heads=h.heads)

    def build_vae(self, frame_size: int) -> FrameVAE:
        v = self.vae
        return FrameVAE(frame_size=frame_size, block_out_channels=tuple(v.block_out_channels),
                        blocks_per_level=tuple(v.blocks_per_level), latent_channels=v.latent_channels)

    def build_denoiser(self, context_length: int, num_actions: int, delta_scale: float = 1.0) -> ActionDenoiser:
        d = self.denoiser
        return ActionDenoiser(latent_channels=self.vae.latent_channels, context_length=context_length,
                              num_actions=num_actions, channels=tuple(d.channels), blocks_per_level=d.blocks_per_level,
                              cond_dim=d.cond_dim, action_embed_dim=d.action_embed_dim, sigma_data=d.sigma_data,
                              predict_delta=d.predict_delta, delta_scale=delta_scale if d.predict_delta else 1.0,
                              history_dim=self.history_dim)

    def build_heads(self, context_length: int, num_actions: int) -> RewardTerminationHead:
        h = self.heads
        return RewardTerminationHead(latent_channels=self.vae.latent_channels, context_length=context_length,
                                     num_actions=num_actions, channels=tuple(h.channels), cond_dim=h.cond_dim,
                                     history_dim=self.history_dim)

    def build_value(self) -> ValueHead | None:
        v = self.value
        if not v.enabled:
            return None
        return ValueHead(latent_channels=self.vae.latent_channels, channels=tuple(v.channels), discount=v.discount,
                         history_dim=self.history_dim)

    def build_static_gate(self, context_length: int, num_actions: int) -> StaticGate | None:
        g = self.static_gate
        if not g.enabled:
            return None
        return StaticGate(latent_channels=self.vae.latent_channels, context_length=context_length,
                          num_actions=num_actions, channels=tuple(g.channels), cond_dim=g.cond_dim,
                          history_dim=self.history_dim, threshold=g.threshold)
