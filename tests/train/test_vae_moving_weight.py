"""`vae.moving_weight`: the VAE's reconstruction loss weights the moving region (issue 14: a 2x2 ball is 0.1% of
an Atari frame and an unweighted MSE can drop it)."""

from __future__ import annotations

import pytest
import torch

from vidworld.eval.moving import moving_mask
from vidworld.train.config import TrainConfig
from vidworld.train.episodes import Episodes
from vidworld.world_models.diffusion.config import DiffusionConfig
from vidworld.world_models.diffusion.train_vae import train_vae
from vidworld.world_models.diffusion.vae import VAEConfig, frames_to_unit


def _episodes(lengths: list[int], frames: torch.Tensor) -> Episodes:
    acts = [torch.zeros(n, dtype=torch.long) for n in lengths]
    obs, start = [], 0
    for n in lengths:
        obs.append(frames[start : start + n + 1])
        start += n + 1
    return Episodes.from_lists(obs, acts, [a.float() for a in acts], [a.bool() for a in acts])


def test_previous_obs_index_stays_inside_each_episode():
    eps = _episodes([2, 3], torch.zeros(7, 3, 4, 4, dtype=torch.uint8))
    # episode 0: obs 0..2, episode 1: obs 3..6; first observations are their own predecessor
    assert eps.previous_obs_index().tolist() == [0, 0, 1, 3, 3, 4, 5]


def _dot_frames(n: int, size: int = 16) -> torch.Tensor:
    """A 2x2 white dot bouncing over a grey static background with a fixed darker band: [n, 3, S, S] uint8."""
    frames = torch.full((n, 3, size, size), 90, dtype=torch.uint8)
    frames[:, :, : size // 4] = 40
    g = torch.Generator().manual_seed(0)
    pos = torch.randint(0, size - 2, (n, 2), generator=g)
    for i, (r, c) in enumerate(pos.tolist()):
        frames[i, :, r : r + 2, c : c + 2] = 255
    return frames


def _moving_mse(weight: float, frames: torch.Tensor, previous: torch.Tensor, tmp) -> float:
    dcfg = DiffusionConfig(vae=VAEConfig(block_out_channels=(8, 16, 16), blocks_per_level=(0, 1, 1), moving_weight=weight))
    cfg = TrainConfig(vae_steps=150, vae_batch_size=16, warmup_steps=5, tensorboard=False, checkpoint_every=10**6,
                      num_threads=1, vae_lr=2e-3)
    vae = train_vae(frames, frames[:0], dcfg, cfg, tmp / f"w{weight}", progress=False, previous=previous).vae
    with torch.no_grad():
        x = frames_to_unit(frames)
        mean, _ = vae.encode(x)
        se = (vae.decode(mean).clamp(-1, 1) - x).pow(2).mean(1)  # [N, S, S]
    mask = moving_mask(frames[previous], frames)
    return float((se * mask).sum() / mask.sum())


def test_moving_weight_reconstructs_the_moving_dot_better(tmp_path):
    frames = _dot_frames(64)
    previous = _episodes([63], frames).previous_obs_index()
    plain, weighted = _moving_mse(0.0, frames, previous, tmp_path), _moving_mse(30.0, frames, previous, tmp_path)
    assert weighted < 0.7 * plain, (plain, weighted)


def test_moving_weight_needs_predecessors_and_a_non_negative_value(tmp_path):
    frames = _dot_frames(8)
    dcfg = DiffusionConfig(vae=VAEConfig(block_out_channels=(4, 8), blocks_per_level=(0, 1), moving_weight=5.0))
    with pytest.raises(ValueError, match=r"vae.moving_weight=5.0 needs each frame's predecessor index \[N=8\]"):
        train_vae(frames, frames[:0], dcfg, TrainConfig(vae_steps=1, tensorboard=False), tmp_path, progress=False)
    with pytest.raises(ValueError, match="moving_weight"):
        VAEConfig(moving_weight=-1.0)
