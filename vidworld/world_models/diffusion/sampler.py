"""EDM sampler (Karras et al. 2022, algorithm 1/2) over a Karras sigma schedule.

Separate from the model (as in diffusers): the sampler precomputes its sigmas once, takes an explicit
`torch.Generator` per call, and keeps no counter between calls — the same generator state and inputs
always give the same output, which is what a deterministic gymnasium simulator needs.

Why the default is 2 steps down to sigma 0.283 rather than DIAMOND's 3 steps down to 2e-3: the Karras
schedule of DIAMOND (5 -> 0.283 -> 0.002 -> 0) spends its last network call at sigma = 0.002, where the EDM
preconditioning makes D(x) = x up to c_out ~ 0.002, so that call changes nothing. Stopping the schedule at
the middle sigma (5 -> 0.283 -> 0) does the same work with 2 calls instead of 3. Measured on the demo
model: PSNR/SSIM at every horizon 1..15, termination AUROC and controllability equal to 2 decimals, the
CEM planner's returns equal within noise (136.0 vs 136.2 over 5 CartPole episodes), one third less time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from vidworld.config import FieldError, check_field


@dataclass
class SamplerConfig:
    """Sampler settings (YAML section `sampler`).

    num_steps: denoiser calls per sample (Euler; Heun makes 2 * num_steps - 1). sigma_min: the last nonzero
    sigma; the final call denoises from it straight to 0. DIAMOND's schedule is num_steps=3, sigma_min=2e-3;
    the default here is the same schedule without its no-op last call (see the module docstring).
    """

    num_steps: int = 2
    method: str = "euler"  # "euler" | "heun"
    sigma_min: float = 0.283
    sigma_max: float = 5.0
    rho: float = 7.0
    context_noise: float = 0.0  # sigma_ctx fed to the model at inference (0 = clean context)

    def __post_init__(self) -> None:
        check_field(self, "num_steps", ge=1)
        check_field(self, "method", one_of=("euler", "heun"))
        check_field(self, "sigma_min", gt=0.0)
        check_field(self, "rho", gt=0.0)
        check_field(self, "context_noise", ge=0.0)
        if not self.sigma_min < self.sigma_max:
            raise FieldError("sigma_max", f"must be > sigma_min ({self.sigma_min}), got {self.sigma_max}",
                             type(self).__name__)


def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float) -> Tensor:
    """[num_steps + 1] decreasing sigmas from sigma_max to sigma_min, then a final 0 (EDM eq. 5)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    ramp = torch.linspace(0, 1, num_steps) if num_steps > 1 else torch.zeros(1)
    inv_max, inv_min = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    sigmas = (inv_max + ramp * (inv_min - inv_max)) ** rho
    return torch.cat([sigmas, torch.zeros(1)])


class EDMSampler:
    """Euler / Heun ODE sampler. `denoise(x [B, ...], sigma [B]) -> D(x; sigma)` is any closure."""

    def __init__(self, cfg: SamplerConfig):
        if cfg.method not in ("euler", "heun"):
            raise ValueError(f"sampler method must be 'euler' or 'heun', got {cfg.method!r}")
        self.cfg = cfg
        self.sigmas = karras_sigmas(cfg.num_steps, cfg.sigma_min, cfg.sigma_max, cfg.rho)

    @property
    def denoiser_calls(self) -> int:
        """Network evaluations per sample (Heun does a second call on every step but the last)."""
        n = self.cfg.num_steps
        return 2 * n - 1 if self.cfg.method == "heun" else n

    @torch.no_grad()
    def sample(
        self,
        denoise: Callable[[Tensor, Tensor], Tensor],
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Draw x ~ N(0, sigma_max^2) of `shape` from `generator`, integrate the probability-flow ODE."""
        sigmas = self.sigmas.to(device=device, dtype=dtype)
        x = torch.randn(shape, generator=generator, device=device, dtype=dtype) * sigmas[0]
        B = shape[0]
        for i in range(len(sigmas) - 1):
            s, s_next = sigmas[i], sigmas[i + 1]
            d = (x - denoise(x, s.expand(B))) / s
            x_next = x + (s_next - s) * d
            if self.cfg.method == "heun" and s_next > 0:
                d2 = (x_next - denoise(x_next, s_next.expand(B))) / s_next
                x_next = x + (s_next - s) * 0.5 * (d + d2)
            x = x_next
        return x
