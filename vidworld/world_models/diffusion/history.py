"""A long-context history encoder: a small causal transformer (🤗 transformers' GPT-2 blocks, built from a
config, no hub weights) over the last L frame latents and the actions between them.

    enc = HistoryEncoder(latent_channels=4, latent_size=8, num_actions=2, length=16)
    h = enc(latents [B, L, c, h, w], actions [B, L-1])        # -> [B, dim]

Why: the denoiser and heads see the last K latents stacked as image channels, and the value head sees one
frame. What is not in a short stack is lost: a velocity that takes more frames to read at 64 px (CartPole's
pole moves sub-pixel per step), or where the agent has been (MiniGrid). The encoder summarises a longer past
into one vector that conditions the denoiser, the heads and the value head, and is the model's
`features(state)` (what actors, critics and MCTS priors read) — the role DreamerV3's recurrent state plays,
here with attention over an explicit window (as in IRIS / TWM's transformer world models).

Tokens: token t = Linear(z_t) + Embedding(a_t), a_t the action taken at frame t; the newest frame's action is
not known yet (the history describes the past, not the action being chosen), so its token gets the extra
"no action yet" id `num_actions`. The output is the newest token's final hidden state (it attends to all).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import Tensor, nn


@dataclass
class HistoryConfig:
    """YAML `diffusion.history`: off by default (the K-frame stack alone); see bench/history.py for the
    measured comparison."""

    enabled: bool = False
    length: int = 16  # L frames of history (>= the denoiser's K; the state then keeps L latents)
    dim: int = 64
    layers: int = 2
    heads: int = 4


class HistoryEncoder(ModelMixin, ConfigMixin):
    config_name = "history_config.json"

    @register_to_config
    def __init__(self, latent_channels: int = 4, latent_size: int = 8, num_actions: int = 2, length: int = 16,
                 dim: int = 64, layers: int = 2, heads: int = 4):
        super().__init__()
        from transformers import GPT2Config, GPT2Model  # only models that use it pay the import

        self.frame_in = nn.Linear(latent_channels * latent_size * latent_size, dim)
        self.action_emb = nn.Embedding(num_actions + 1, dim)  # id num_actions: "no action yet"
        gpt = GPT2Config(n_embd=dim, n_layer=layers, n_head=heads, n_positions=length, vocab_size=1,
                         bos_token_id=None, eos_token_id=None, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        self.transformer = GPT2Model(gpt)
        self.norm = nn.LayerNorm(dim)

    def forward(self, latents: Tensor, actions: Tensor) -> Tensor:
        """latents [B, L, c, h, w] (oldest first), actions long [B, L-1] (taken at all but the newest frame)
        -> [B, dim]."""
        B, L = latents.shape[:2]
        if L != self.config.length or actions.shape != (B, L - 1):
            raise ValueError(f"history needs latents [B, L={self.config.length}, ...] and actions [B, L-1], got "
                             f"{tuple(latents.shape)} and {tuple(actions.shape)}")
        pending = actions.new_full((B, 1), self.config.num_actions)
        x = self.frame_in(latents.flatten(2)) + self.action_emb(torch.cat([actions.long(), pending], 1))
        out = self.transformer(inputs_embeds=x).last_hidden_state[:, -1]
        return self.norm(out)
