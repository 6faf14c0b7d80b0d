"""Training hyper-parameters (YAML section `train`).

Every numeric field is range-checked when the config is built: a zero step count or batch size otherwise
trains on nothing and logs NaN losses while still saving a "model", and a zero `log_every` /
`checkpoint_every` crashes with ZeroDivisionError only once training has started.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidworld.train.optim import LR_SCHEDULES
from vidworld.config import MAX_SEED, check_field

MIXED_PRECISIONS = ("no", "fp16", "bf16", "auto")  # accelerate's names; "auto" = bf16 where native, else "no"


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
    lr_schedule: str = "cosine"  # "cosine" (to 10% at the last step) | "constant" after warm-up (online loop)
    grad_accum: int = 1
    grad_clip: float = 1.0  # max gradient norm (0 = no clipping)
    mixed_precision: str = "no"  # "no" | "fp16" | "bf16" (accelerate; fp16 is a no-op on CPU) | "auto": bf16
    #                              where the device runs it natively (vidworld/precision.py), else "no"
    checkpoint_every: int = 500  # optimizer steps between accelerate save_state checkpoints
    keep_checkpoints: int = 2
    log_every: int = 50
    num_threads: int = 0  # torch.set_num_threads (0 = leave torch's default)
    tensorboard: bool = True  # used when the optional `tensorboard` extra is installed
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("vae_steps", "vae_batch_size", "dynamics_steps", "dynamics_batch_size", "grad_accum",
                     "checkpoint_every", "keep_checkpoints", "log_every"):
            check_field(self, name, ge=1)
        for name in ("vae_lr", "dynamics_lr"):
            check_field(self, name, gt=0)
        # EMA weight of the old average: 1 would never move off the initial weights
        check_field(self, "ema_decay", ge=0, lt=1)
        check_field(self, "weight_decay", ge=0)
        check_field(self, "warmup_steps", ge=0)
        check_field(self, "grad_clip", ge=0, note="0 = no clipping")
        check_field(self, "lr_schedule", one_of=LR_SCHEDULES)
        check_field(self, "mixed_precision", one_of=MIXED_PRECISIONS)
        check_field(self, "num_threads", ge=0, note="0 = torch's default")
        check_field(self, "seed", ge=0, lt=MAX_SEED)
