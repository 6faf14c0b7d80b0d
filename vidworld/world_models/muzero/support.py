"""MuZero's value/reward representation: the invertible transform h and categorical supports over it.

Schrittwieser et al. 2020 (Appendix F) after Pohlen et al. 2018: scalars are squashed by

    h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x,                     eps = 0.001
    h^-1(y) = sign(y) (((sqrt(1 + 4 eps (|y| + 1 + eps)) - 1) / (2 eps))^2 - 1)

and h(x) is represented as a two-hot distribution over the 2S+1 integer bins -S..S (muzero-general's
`scalar_to_support`, whose `support_to_scalar` takes the expectation over the bins, then h^-1).
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 0.001


def h(x: Tensor, eps: float = EPS) -> Tensor:
    """The squashing transform, elementwise."""
    return torch.sign(x) * (torch.sqrt(x.abs() + 1) - 1) + eps * x


def h_inv(y: Tensor, eps: float = EPS) -> Tensor:
    """The exact inverse of `h`, elementwise."""
    return torch.sign(y) * (((torch.sqrt(1 + 4 * eps * (y.abs() + 1 + eps)) - 1) / (2 * eps)) ** 2 - 1)


def scalar_to_support(x: Tensor, size: int) -> Tensor:
    """Scalars [...] -> two-hot probabilities [..., 2*size+1] over the bins -size..size of h(x) (clipped to
    the range), with the mass split between the two nearest integers so the expectation is exactly h(x)."""
    y = h(x.float()).clamp(-size, size)
    low = y.floor()
    frac = y - low
    probs = torch.zeros(*x.shape, 2 * size + 1, device=x.device)
    lo_idx = (low + size).long()
    probs.scatter_(-1, lo_idx.unsqueeze(-1), (1 - frac).unsqueeze(-1))
    hi_idx = (lo_idx + 1).clamp(max=2 * size)
    probs.scatter_add_(-1, hi_idx.unsqueeze(-1), frac.unsqueeze(-1))
    return probs


def support_to_scalar(logits: Tensor, size: int) -> Tensor:
    """Logits [..., 2*size+1] over the bins -size..size -> scalars [...]: h^-1 of the expected bin."""
    if logits.shape[-1] != 2 * size + 1:
        raise ValueError(f"support logits must have {2 * size + 1} bins (support size {size}), got {logits.shape[-1]}")
    probs = torch.softmax(logits.float(), -1)
    bins = torch.arange(-size, size + 1, device=logits.device, dtype=torch.float32)
    return h_inv((probs * bins).sum(-1))
