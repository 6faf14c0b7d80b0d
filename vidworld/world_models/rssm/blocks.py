"""The RSSM's layers: CNN encoder/decoder for square frames, LayerNorm GRU, MLP heads. All hidden layers
are (bias-free linear or conv) -> LayerNorm -> SiLU, as in DreamerV3 (Hafner et al. 2023, appendix B:
"LayerNorm and SiLU" everywhere); LayerNorm eps 1e-3 as in DreamerV3 and dreamerv3-torch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LN_EPS = 1e-3


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of every pixel of a [B, C, H, W] map (DreamerV3's image LayerNorm)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=LN_EPS)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def conv_stages(frame_size: int, minres: int) -> int:
    """Stride-2 stages from frame_size down to minres (both powers of two)."""
    stages = math.log2(frame_size / minres)
    if frame_size % minres or not stages.is_integer() or stages < 1:
        raise ValueError(f"frame_size {frame_size} must be minres {minres} times a power of two (>= 2x)")
    return int(stages)


class ConvEncoder(nn.Module):
    """Frames [N, 3, S, S] in [-0.5, 0.5] -> embeddings [N, E].

    Stride-2 4x4 convs halve the side down to `minres`, doubling channels from `depth` (dreamerv3-torch's
    layout: 64 -> 32 -> 16 -> 8 -> 4 with 32, 64, 128, 256 channels for its Atari size);
    E = minres^2 * depth * 2^(stages-1).
    """

    def __init__(self, frame_size: int, depth: int, minres: int):
        super().__init__()
        layers: list[nn.Module] = []
        ch_in = 3
        for i in range(conv_stages(frame_size, minres)):
            ch = depth * 2**i
            layers += [nn.Conv2d(ch_in, ch, 4, 2, 1, bias=False), ChannelNorm(ch), nn.SiLU()]
            ch_in = ch
        self.layers = nn.Sequential(*layers)
        self.out_dim = ch_in * minres * minres

    def forward(self, x: Tensor) -> Tensor:
        # channels-last: oneDNN's fast convolution layout on CPU (2-4x here), and ChannelNorm's LayerNorm
        # then runs over contiguous memory
        return self.layers(x.contiguous(memory_format=torch.channels_last)).flatten(1)


class ConvDecoder(nn.Module):
    """Features [N, F] -> frames [N, 3, S, S] (the mean of a unit-variance Gaussian, in [-0.5, 0.5] units):
    a linear layer to a [C, minres, minres] map, then stride-2 transposed convs mirroring the encoder."""

    def __init__(self, feature_dim: int, frame_size: int, depth: int, minres: int):
        super().__init__()
        stages = conv_stages(frame_size, minres)
        self.minres, self.top = minres, depth * 2 ** (stages - 1)
        self.linear = nn.Linear(feature_dim, self.top * minres * minres)
        layers: list[nn.Module] = []
        ch_in = self.top
        for i in range(stages - 1):
            ch = ch_in // 2
            layers += [nn.ConvTranspose2d(ch_in, ch, 4, 2, 1, bias=False), ChannelNorm(ch), nn.SiLU()]
            ch_in = ch
        layers.append(nn.ConvTranspose2d(ch_in, 3, 4, 2, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, feat: Tensor) -> Tensor:
        x = self.linear(feat).unflatten(-1, (self.top, self.minres, self.minres))
        return self.layers(x.contiguous(memory_format=torch.channels_last))


def mlp(in_dim: int, units: int, layers: int) -> nn.Sequential:
    """`layers` x (Linear -> LayerNorm -> SiLU); the caller adds its own output layer."""
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [nn.Linear(in_dim, units, bias=False), nn.LayerNorm(units, eps=LN_EPS), nn.SiLU()]
        in_dim = units
    return nn.Sequential(*mods)


class NormLinear(nn.Module):
    """SiLU(LayerNorm(sum of bias-free linear maps of several inputs)) = one linear layer on their
    concatenation, split so parts known for a whole sequence (actions, image embeddings) can be projected
    once for all time steps instead of inside the recurrent loop."""

    def __init__(self, in_dims: tuple[int, ...], out_dim: int):
        super().__init__()
        self.parts = nn.ModuleList(nn.Linear(d, out_dim, bias=False) for d in in_dims)
        self.norm = nn.LayerNorm(out_dim, eps=LN_EPS)

    def project(self, i: int, x: Tensor) -> Tensor:
        return self.parts[i](x)

    def finish(self, summed: Tensor) -> Tensor:
        return F.silu(self.norm(summed))

    def forward(self, *xs: Tensor) -> Tensor:
        return self.finish(sum(p(x) for p, x in zip(self.parts, xs)))


class LayerNormGRU(nn.Module):
    """DreamerV3's GRU cell: one bias-free linear map of [input, h] to 3 x size, LayerNorm, then
    reset = sigmoid(r); cand = tanh(reset * c); update = sigmoid(u - 1);
    h' = update * cand + (1 - update) * h.
    (The -1 bias keeps the state by default early in training; the reset gate multiplies the normalised
    candidate pre-activation rather than h, as in DreamerV3 / dreamerv3-torch.)"""

    def __init__(self, in_dim: int, size: int):
        super().__init__()
        self.size = size
        self.linear = nn.Linear(in_dim + size, 3 * size, bias=False)
        self.norm = nn.LayerNorm(3 * size, eps=LN_EPS)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        parts = self.norm(self.linear(torch.cat([x, h], -1)))
        reset, cand, update = parts.split(self.size, -1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1.0)
        return update * cand + (1 - update) * h
