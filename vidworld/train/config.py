"""Training hyper-parameters (YAML section `train`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    """Both stages: VAE first, then denoiser + reward/termination heads on cached latents."""

    # stage 1: VAE
    vae_steps: int = 500
    vae_batch_size: int = 64
    vae_lr: float = 2e-3
    # stage 2: dynamics (denoiser + heads)
    dynamics_steps: int = 6000
    dynamics_batch_size: int = 64
    dynamics_lr: float = 1e-3
    pad_episode_starts: bool = True  # also train on contexts padded with the first frame (as agents start)
    ema_decay: float = 0.999
    # shared
    weight_decay: float = 1e-2
    warmup_steps: int = 100
    grad_accum: int = 1
    grad_clip: float = 1.0
    mixed_precision: str = "no"  # "no" | "fp16" | "bf16" (accelerate; fp16 is a no-op on CPU)
    checkpoint_every: int = 500  # optimizer steps between accelerate save_state checkpoints
    keep_checkpoints: int = 2
    log_every: int = 50
    num_threads: int = 0  # torch.set_num_threads (0 = leave torch's default)
    tensorboard: bool = True  # used when the optional `tensorboard` extra is installed
    seed: int = 0
