"""The actor and critic networks over `model.features(state)` [.., F], and the policy distributions they make.

Both are DreamerV3-style MLPs (Hafner et al. 2023): Linear -> LayerNorm -> SiLU blocks, then an output layer.

* Actor, discrete actions: a categorical over n actions mixed with 1% uniform ("unimix", DreamerV3 Sec. 3) so
  no action's probability collapses to 0 (its log-prob, hence the REINFORCE gradient, stays finite and the
  policy keeps exploring a little). Output layer scaled by 0.01 at init: the first policy is ~uniform.
* Actor, continuous actions (`ActionSpec.kind != "discrete"`): DreamerV3's bounded normal, mean tanh(.) in
  [-1, 1], std in [0.1, 1]; the model receives the sample clipped to [-1, 1] and mapped to [low, high].
* Critic: logits over the two-hot bins (twohot.py); output layer zero-initialised, so the first value of
  every state is exactly 0 (DreamerV3's `outscale: 0.0`).

The distributions are written out by hand rather than with torch.distributions: `act` at batch 1 is a
real-time path (the online loop acts in the real env with it), and the hand-written forms are a few
tensor ops with an explicit `torch.Generator`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vidworld.agents.twohot import TwoHot
from vidworld.protocol import ActionSpec

MIN_STD, MAX_STD = 0.1, 1.0  # DreamerV3's bounded normal (policy: minstd, maxstd)


def mlp(in_dim: int, hidden: int, layers: int, out_dim: int) -> nn.Sequential:
    """`layers` x (Linear -> LayerNorm -> SiLU), then Linear to `out_dim`."""
    blocks: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        blocks += [nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        d = hidden
    blocks.append(nn.Linear(d, out_dim))
    return nn.Sequential(*blocks)


@dataclass(frozen=True)
class Categorical:
    """Categorical over the last dim of `probs` [..., n] (already uniform-mixed)."""

    probs: Tensor

    def sample(self, generator: torch.Generator | None) -> Tensor:
        """-> long [...]; one multinomial draw per row from `generator`."""
        flat = self.probs.reshape(-1, self.probs.shape[-1])
        return torch.multinomial(flat, 1, generator=generator).reshape(self.probs.shape[:-1])

    def mode(self) -> Tensor:
        return self.probs.argmax(-1)

    def log_prob(self, actions: Tensor) -> Tensor:
        return torch.log(self.probs.gather(-1, actions.long()[..., None]).squeeze(-1))

    def entropy(self) -> Tensor:
        return -(self.probs * torch.log(self.probs)).sum(-1)


@dataclass(frozen=True)
class BoundedNormal:
    """Diagonal normal with mean [..., d] in [-1, 1] and std [..., d] in [MIN_STD, MAX_STD]."""

    mean: Tensor
    std: Tensor

    def sample(self, generator: torch.Generator | None) -> Tensor:
        """Reparameterised: mean + std * eps with eps from `generator`, so gradients reach mean and std."""
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device)
        return self.mean + self.std * eps

    def mode(self) -> Tensor:
        return self.mean

    def log_prob(self, actions: Tensor) -> Tensor:
        z = (actions - self.mean) / self.std
        return (-0.5 * z**2 - torch.log(self.std) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self) -> Tensor:
        return (0.5 + 0.5 * math.log(2 * math.pi) + torch.log(self.std)).sum(-1)


class Actor(nn.Module):
    """features [..., F] -> a policy distribution over `action_spec`'s actions."""

    def __init__(self, feature_dim: int, action_spec: ActionSpec, hidden: int, layers: int, unimix: float):
        super().__init__()
        self.action_spec = action_spec
        self.discrete = action_spec.kind == "discrete"
        if self.discrete and action_spec.n < 1:
            raise ValueError(f"discrete action spec needs n >= 1 actions, got {action_spec.n}")
        self.action_dim = action_spec.n if self.discrete else math.prod(action_spec.shape)
        self.unimix = unimix
        self.net = mlp(feature_dim, hidden, layers, self.action_dim * (1 if self.discrete else 2))
        with torch.no_grad():  # DreamerV3 policy outscale 0.01: start near uniform / zero-mean
            self.net[-1].weight.mul_(0.01)
            self.net[-1].bias.zero_()

    def forward(self, features: Tensor) -> Categorical | BoundedNormal:
        out = self.net(features)
        if self.discrete:
            probs = torch.softmax(out, -1)
            return Categorical((1.0 - self.unimix) * probs + self.unimix / self.action_dim)
        mean, std = out.chunk(2, -1)
        # sigmoid(x + 2): std starts near its top (~0.9), exploring, and can shrink to MIN_STD (DreamerV3)
        return BoundedNormal(torch.tanh(mean), (MAX_STD - MIN_STD) * torch.sigmoid(std + 2.0) + MIN_STD)

    def to_model(self, actions: Tensor) -> Tensor:
        """Policy samples -> what `model.step` accepts: ids for discrete; for continuous, clipped to [-1, 1],
        mapped to [low, high] and reshaped to [B, *shape]."""
        if self.discrete:
            return actions.long()
        spec = self.action_spec
        unit = actions.clamp(-1.0, 1.0)
        scaled = spec.low + (unit + 1.0) * 0.5 * (spec.high - spec.low)
        return scaled.reshape(*actions.shape[:-1], *spec.shape)


class Critic(nn.Module):
    """features [..., F] -> logits [..., bins] of a symlog two-hot value; `value` decodes them to [...]."""

    def __init__(self, feature_dim: int, hidden: int, layers: int, twohot: TwoHot):
        super().__init__()
        self.twohot = twohot
        self.net = mlp(feature_dim, hidden, layers, twohot.num_bins)
        with torch.no_grad():  # DreamerV3 value outscale 0.0: every first value is exactly 0
            self.net[-1].weight.zero_()
            self.net[-1].bias.zero_()

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features)

    def value(self, features: Tensor) -> Tensor:
        return self.twohot.decode(self.net(features))
