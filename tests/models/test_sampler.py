import pytest
import torch

from vidworld.world_models.diffusion.sampler import EDMSampler, SamplerConfig, karras_sigmas


def test_karras_sigmas_endpoints_and_monotone():
    s = karras_sigmas(3, 0.002, 5.0, 7.0)
    assert s.shape == (4,)
    assert torch.isclose(s[0], torch.tensor(5.0)) and torch.isclose(s[2], torch.tensor(0.002)) and s[3] == 0
    assert (s[:-1] > s[1:]).all()


def test_single_step_is_one_denoise_from_sigma_max():
    # With D(x; s) = 0.5 * x, one Euler step from sigma_max to 0 lands exactly on D(x0; sigma_max).
    sampler = EDMSampler(SamplerConfig(num_steps=1))
    g = torch.Generator().manual_seed(0)
    out = sampler.sample(lambda x, s: 0.5 * x, (2, 3), generator=g)
    x0 = torch.randn((2, 3), generator=torch.Generator().manual_seed(0)) * 5.0
    assert torch.allclose(out, 0.5 * x0)


def test_sampler_converges_on_gaussian_ode_with_the_right_order():
    # Data = N(0, sd^2): the ideal denoiser is D(x; s) = x * sd^2 / (sd^2 + s^2), and the probability-flow ODE
    # maps x(sigma_max) to x(0) = x * sd / sqrt(sd^2 + sigma_max^2). Euler is first order, Heun second order:
    # 4x the steps cuts Euler's error ~4x and Heun's ~16x.
    sd = 1.0
    denoise = lambda x, s: x * sd**2 / (sd**2 + s.view(-1, 1) ** 2)
    errs = {}
    for method in ("euler", "heun"):
        for n in (16, 64):
            cfg = SamplerConfig(num_steps=n, method=method, sigma_min=2e-3)  # EDM's fine schedule
            out = EDMSampler(cfg).sample(denoise, (4, 2), generator=torch.Generator().manual_seed(1))
            x0 = torch.randn((4, 2), generator=torch.Generator().manual_seed(1)) * cfg.sigma_max
            exact = x0 * sd / (sd**2 + cfg.sigma_max**2) ** 0.5
            errs[method, n] = (out - exact).abs().max().item()
    assert 3 < errs["euler", 16] / errs["euler", 64] < 5
    assert errs["heun", 16] / errs["heun", 64] > 12
    assert errs["heun", 64] < 2e-3 and errs["heun", 16] < errs["euler", 16] / 3


def test_same_generator_state_same_output_no_hidden_counter():
    sampler = EDMSampler(SamplerConfig(num_steps=3, method="heun"))
    denoise = lambda x, s: torch.tanh(x)
    a = sampler.sample(denoise, (3, 4), generator=torch.Generator().manual_seed(5))
    b = sampler.sample(denoise, (3, 4), generator=torch.Generator().manual_seed(5))
    c = sampler.sample(denoise, (3, 4), generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert sampler.denoiser_calls == 5


def test_bad_sampler_settings():
    with pytest.raises(ValueError, match="method"):
        EDMSampler(SamplerConfig(method="ddim"))
    with pytest.raises(ValueError, match="num_steps"):
        karras_sigmas(0, 0.002, 5, 7)


def test_default_schedule_is_diamonds_three_steps_without_the_no_op_last_call():
    diamond = karras_sigmas(3, 2e-3, 5.0, 7.0)  # 5 -> 0.283 -> 0.002 -> 0
    default = EDMSampler(SamplerConfig()).sigmas  # 5 -> 0.283 -> 0
    assert default.shape == (3,) and default[-1] == 0
    assert torch.allclose(default[:2], diamond[:2], atol=1e-3)
