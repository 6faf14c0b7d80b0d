"""A tiny real CartPole dataset (16x16 frames) collected once per session, and a tiny experiment config."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidworld.data.collect import CollectConfig, collect
from vidworld.envs.pixels import PixelEnvConfig


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "cartpole16"
    collect(CollectConfig(env=PixelEnvConfig(id="CartPole-v1", frame_size=16), steps=160, seed=0, out=str(out)),
            progress=False)
    return out


def tiny_overrides(data: Path, run_dir: Path) -> list[str]:
    """A real but tiny experiment: 16x16 frames -> 4x4x4 latents, K=3, 2 sampler steps, 4+4 steps."""
    return [
        f"data.path={data}", f"run_dir={run_dir}", "model.context_length=3", "data.val_fraction=0.3",
        "diffusion.vae.block_out_channels=[4,8,8]", "diffusion.vae.blocks_per_level=[0,1,1]",
        "diffusion.denoiser.channels=[8,16]", "diffusion.denoiser.cond_dim=16", "diffusion.denoiser.action_embed_dim=4",
        "diffusion.heads.channels=[8,8]", "diffusion.heads.cond_dim=8", "diffusion.sampler.num_steps=2",
        "train.vae_steps=4", "train.dynamics_steps=4", "train.vae_batch_size=8", "train.dynamics_batch_size=8",
        "train.checkpoint_every=2", "train.log_every=1", "train.warmup_steps=2", "train.tensorboard=false",
        "eval.horizon=3", "eval.max_clips=8", "eval.controllability_clips=4", "eval.video_clips=2",
    ]
