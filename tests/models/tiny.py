"""Tiny real models for tests: 16x16 frames, 4x4x4 latents, 2 sampler steps."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from vidworld.world_models.diffusion.sampler import SamplerConfig
from vidworld.world_models.diffusion.denoiser import ActionDenoiser
from vidworld.world_models.diffusion.heads import RewardTerminationHead
from vidworld.world_models.diffusion.history import HistoryEncoder
from vidworld.world_models.diffusion.value import ValueHead
from vidworld.world_models.diffusion.vae import FrameVAE
from vidworld.world_models.diffusion.model import DiffusionWorldModel

K = 3
FRAME = 16


def tiny_world_model(seed: int = 0, num_actions: int = 2) -> DiffusionWorldModel:
    torch.manual_seed(seed)
    vae = FrameVAE(frame_size=FRAME, block_out_channels=(4, 8, 8), latent_channels=4)
    den = ActionDenoiser(latent_channels=4, context_length=K, num_actions=num_actions, channels=(8, 16),
                         cond_dim=16, action_embed_dim=4)
    heads = RewardTerminationHead(latent_channels=4, context_length=K, num_actions=num_actions, channels=(8, 8),
                                  cond_dim=8)
    # Zero-initialised output layers would make every sample equal; perturb so tests can see differences.
    with torch.no_grad():
        for p in list(den.parameters()) + list(heads.parameters()):
            p.add_(0.05 * torch.randn_like(p))
    return DiffusionWorldModel(vae, den, heads, SamplerConfig(num_steps=2)).eval()


HISTORY = 5  # frames of memory of the tiny history model (> K)


def tiny_history_model(seed: int = 0, num_actions: int = 2) -> DiffusionWorldModel:
    """The tiny model plus a 2-layer transformer history encoder over 5 frames, feeding denoiser, heads, value."""
    torch.manual_seed(seed)
    vae = FrameVAE(frame_size=FRAME, block_out_channels=(4, 8, 8), latent_channels=4)
    den = ActionDenoiser(latent_channels=4, context_length=K, num_actions=num_actions, channels=(8, 16),
                         cond_dim=16, action_embed_dim=4, history_dim=8)
    heads = RewardTerminationHead(latent_channels=4, context_length=K, num_actions=num_actions, channels=(8, 8),
                                  cond_dim=8, history_dim=8)
    value = ValueHead(latent_channels=4, channels=(8,), history_dim=8)
    history = HistoryEncoder(latent_channels=4, latent_size=FRAME // 4, num_actions=num_actions, length=HISTORY,
                             dim=8, layers=1, heads=2)
    with torch.no_grad():
        for p in list(den.parameters()) + list(heads.parameters()):
            p.add_(0.05 * torch.randn_like(p))
    return DiffusionWorldModel(vae, den, heads, SamplerConfig(num_steps=2), value=value, history=history).eval()


def random_context(B: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (B, K, 3, FRAME, FRAME), generator=g, dtype=torch.uint8)
    actions = torch.randint(0, 2, (B, K - 1), generator=g)
    return frames, actions


def tiny_world_on_disk(root: Path) -> SimpleNamespace:
    """A 16x16 CartPole dataset collected for real (40 steps) and a tiny model saved with it as its dataset.

    Returns SimpleNamespace(root, data, model_dir, model)."""
    from vidworld.data.collect import CollectConfig, collect
    from vidworld.envs.pixels import PixelEnvConfig

    collect(CollectConfig(env=PixelEnvConfig(frame_size=FRAME), steps=40, out=str(root / "data"), seed=0),
            progress=False)
    model = tiny_world_model()
    model.meta["dataset"] = str(root / "data")
    model.save_pretrained(root / "model")
    return SimpleNamespace(root=root, data=root / "data", model_dir=root / "model", model=model)
