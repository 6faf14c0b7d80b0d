"""Settings of the MuZero networks (YAML `muzero.network`); the learner and search settings are beside them in
`vidworld/rl/muzero_config.py` (the `muzero` section)."""

from __future__ import annotations

from dataclasses import dataclass

from vidworld.config import FieldError, check_field

OBSERVATIONS = ("state", "pixels")
ENCODER_NORMS = ("batch", "group")


@dataclass
class MuZeroNetConfig:
    """observation: "state" (the env's low-dimensional state, float [K, D]) or "pixels" (uint8 frames
    [K, 3, S, S], stacked K = model.context_length deep with the K-1 actions between them as planes).
    latent_dim: size of the min-max scaled latent; hidden/layers: the MLPs of dynamics and prediction
    (and of the state encoder); channels: the strided conv encoder of pixel observations (each halves
    the side); value_support / reward_support: S of the 2S+1 categorical bins over h(x).
    encoder_norm: the normalisation after each conv of the pixel encoder: "batch" (BatchNorm2d, as MuZero's and
    EfficientZero's conv representations) or "group" (GroupNorm with one group: what pixel models saved before
    2026-12-08 use; it collapsed CartPole's representation to a constant, see networks.py)."""

    observation: str = "state"
    latent_dim: int = 64
    hidden: int = 128
    layers: int = 2
    channels: tuple[int, ...] = (16, 32, 32, 32)
    value_support: int = 20
    reward_support: int = 5
    encoder_norm: str = "batch"

    def __post_init__(self) -> None:
        check_field(self, "observation", one_of=OBSERVATIONS)
        check_field(self, "encoder_norm", one_of=ENCODER_NORMS)
        for name in ("latent_dim", "hidden", "layers", "value_support", "reward_support"):
            check_field(self, name, ge=1)
        self.channels = tuple(int(c) for c in self.channels)
        if not self.channels or min(self.channels) < 1:
            raise FieldError("channels", f"must be a non-empty list of positive ints, got {list(self.channels)}",
                             type(self).__name__)
