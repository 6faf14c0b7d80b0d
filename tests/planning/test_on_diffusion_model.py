"""The planners run unchanged on the real (tiny, untrained) DiffusionWorldModel: shapes, batching, decode."""

from __future__ import annotations

import torch

from vidworld.world_models.diffusion.sampler import SamplerConfig
from vidworld.world_models.diffusion.denoiser import ActionDenoiser
from vidworld.world_models.diffusion.heads import RewardTerminationHead
from vidworld.world_models.diffusion.vae import FrameVAE
from vidworld.planning import CEMConfig, CEMPlanner, MCTSPlanner, MPCAgent, mcts_policy
from vidworld.world_models.diffusion.model import DiffusionWorldModel

K, FRAME = 3, 16


def tiny_diffusion_model() -> DiffusionWorldModel:
    torch.manual_seed(0)
    vae = FrameVAE(frame_size=FRAME, block_out_channels=(4, 8, 8), latent_channels=4)
    den = ActionDenoiser(
        latent_channels=4, context_length=K, num_actions=2, channels=(8, 16), cond_dim=16, action_embed_dim=4
    )
    heads = RewardTerminationHead(
        latent_channels=4, context_length=K, num_actions=2, channels=(8, 8), cond_dim=8
    )
    with torch.no_grad():  # zero-initialised output layers would make every sample identical
        for p in list(den.parameters()) + list(heads.parameters()):
            p.add_(0.05 * torch.randn_like(p))
    return DiffusionWorldModel(vae, den, heads, SamplerConfig(num_steps=2)).eval()


def test_planners_on_the_diffusion_world_model():
    model = tiny_diffusion_model()
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, K, 3, FRAME, FRAME), generator=g, dtype=torch.uint8)
    actions = torch.randint(0, 2, (3, K - 1), generator=g)
    cfg = CEMConfig(
        horizon=3, population=8, elites=2, iterations=2, uncertainty_samples=3, uncertainty_penalty=1
    )
    result = CEMPlanner(model, cfg).plan(model.init(frames[:1], actions[:1]), g)
    assert result.plan.shape == (3,) and result.latents.shape == (3, *model.latent_shape)
    assert result.return_std > 0  # different sampler noise per copy -> a spread the penalty can see
    assert model.decode(result.latents).shape == (3, 3, FRAME, FRAME)
    out = mcts_policy(model, model.init(frames, actions), 6, generator=g)  # 3 roots in one search
    assert out.visit_counts.shape == (3, 2) and (out.visit_counts.sum(-1) == 6).all()
    for planner in (CEMPlanner(model, cfg), MCTSPlanner(model, 4)):
        agent = MPCAgent(model, planner, record=True)
        agent.reset(frames[0, 0])
        action = agent.act(frames[0, 0], g)
        agent.act(frames[0, 1], g)
        assert action in (0, 1) and agent.context()[1].tolist() == [[0, action]]
        assert agent.imagined_frames().dtype == torch.uint8
