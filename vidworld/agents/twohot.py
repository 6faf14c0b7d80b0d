"""Symlog two-hot regression (DreamerV3, Hafner et al. 2023, Eq. 9-10), what the critic predicts values with.

A scalar y is regressed as a categorical distribution over fixed bins b_1 < ... < b_N placed uniformly in
*symlog* space (default: 255 bins on [-20, 20], as DreamerV3's `symexp_twohot` output):

* target: twohot(symlog(y)), the two neighbouring bins of symlog(y) weighted by closeness (weights sum to 1;
  a target outside the bins puts all its weight on the end bin);
* loss: cross-entropy -sum_i twohot_i * log softmax(logits)_i;
* prediction: symexp(sum_i softmax(logits)_i * b_i).

Why: the loss magnitude does not depend on the scale of the returns (CartPole's 1 per step and Atari's
thousands train alike), and the gradients do not explode on large targets as a squared error would.
"""

from __future__ import annotations

import torch
from torch import Tensor


def symlog(x: Tensor) -> Tensor:
    """sign(x) * log(1 + |x|): compresses large magnitudes, identity-like near 0."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: Tensor) -> Tensor:
    """Inverse of `symlog`: sign(x) * (exp(|x|) - 1)."""
    return torch.sign(x) * torch.expm1(x.abs())


class TwoHot:
    """The bins and the three operations on them. Stateless apart from the bin positions (not learned).

    bins: [N] float32, uniform on [low, high] in symlog space. N odd keeps a bin at exactly 0.
    """

    def __init__(self, num_bins: int = 255, low: float = -20.0, high: float = 20.0):
        if num_bins < 2 or not low < high:
            raise ValueError(f"two-hot needs >= 2 bins on low < high, got {num_bins} bins on [{low}, {high}]")
        bins = torch.linspace(low, high, num_bins)
        if low == -high:  # make the grid exactly antisymmetric (linspace leaves ~1e-7 at the middle bin)
            bins = (bins - bins.flip(0)) / 2
        self.bins = bins

    @property
    def num_bins(self) -> int:
        return self.bins.numel()

    def encode(self, y: Tensor) -> Tensor:
        """Raw targets [...] -> two-hot weights [..., N] over the symlog bins."""
        x = symlog(y.float())
        bins = self.bins.to(x.device)
        n = bins.numel()
        # index of the last bin <= x (clamped into the grid), and the bin above it
        below = (torch.searchsorted(bins, x.contiguous(), right=True) - 1).clamp(0, n - 2)
        above = below + 1
        lo, hi = bins[below], bins[above]
        w_above = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)  # outside the grid: all weight on the end bin
        out = torch.zeros(*x.shape, n, device=x.device)
        out.scatter_(-1, below[..., None], (1.0 - w_above)[..., None])
        out.scatter_add_(-1, above[..., None], w_above[..., None])
        return out

    def decode(self, logits: Tensor) -> Tensor:
        """Logits [..., N] -> raw predictions [...] (symexp of the expected bin).

        The expectation pairs bins symmetric about the middle before summing, so uniform probabilities over
        symmetric bins give exactly 0 (a zero-initialised critic predicts exactly 0; a left-to-right sum
        would leave a rounding residue that symexp can blow up). Same trick as DreamerV3's `TwoHot.pred`.
        """
        probs = torch.softmax(logits.float(), -1)
        bins = self.bins.to(probs.device)
        n = bins.numel()
        m = n // 2
        low = (probs[..., :m] * bins[:m]).flip(-1)  # nearest-to-middle first, like `high`
        high = probs[..., n - m :] * bins[n - m :]
        mean = (low + high).sum(-1)
        if n % 2:
            mean = mean + probs[..., m] * bins[m]
        return symexp(mean)

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """Cross-entropy of logits [..., N] against twohot(symlog(y)) for raw targets y [...] -> [...]."""
        target = self.encode(y.detach())
        return -(target * torch.log_softmax(logits.float(), -1)).sum(-1)
