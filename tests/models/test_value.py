import pytest
import torch

from tests.models.tiny import random_context, tiny_world_model
from vidworld.world_models.diffusion.value import ValueHead, discounted_returns
from vidworld.world_models import load_world_model
from vidworld.world_models.diffusion.model import DiffusionWorldModel


def test_discounted_returns_by_hand():
    # episode 1: 3 steps, terminated at the end; episode 2: 2 steps, not terminated (end of data)
    rewards = torch.tensor([1.0, 1.0, 1.0, 2.0, 4.0])
    terminated = torch.tensor([False, False, True, False, False])
    g = discounted_returns(rewards, terminated, torch.tensor([3, 2]), discount=0.5)
    # ep1 obs: G0 = 1 + .5(1 + .5*1) = 1.75, G1 = 1.5, G2 = 1 (terminal transition), G3 = 0 (last obs)
    # ep2 obs: G0 = 2 + .5*4 = 4, G1 = 4, G2 = 0
    assert g.tolist() == [1.75, 1.5, 1.0, 0.0, 4.0, 4.0, 0.0]


def test_value_head_round_trips_with_the_model(tmp_path):
    base = tiny_world_model()
    torch.manual_seed(0)
    value = ValueHead(latent_channels=4, channels=(8,), discount=0.9)
    model = DiffusionWorldModel(base.vae, base.denoiser, base.heads, base.sampler_config, value=value).eval()
    frames, actions = random_context(2)
    state = model.init(frames, actions)
    model.save_pretrained(tmp_path / "wm")
    loaded = load_world_model(tmp_path / "wm")
    assert loaded.has_value and not base.has_value
    assert torch.equal(model.value(state), loaded.value(state)) and model.value(state).shape == (2,)
    assert torch.equal(model.value(state), value(state.latents[:, -1]))  # the value of the newest latent
    with pytest.raises(ValueError, match="no value head"):
        base.value(state)
