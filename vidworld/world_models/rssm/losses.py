"""The DreamerV3 distributions and losses of the RSSM (Hafner et al. 2023, "Mastering Diverse Domains
through World Models", sections 2 and 3 / appendix), as plain functions on tensors.

* `symlog` / `symexp`: the squashing the paper uses for targets of unknown scale (rewards here).
* Two-hot symlog regression: the reward head outputs logits over fixed bins in symlog space; its target
  is the two-hot encoding of symlog(r) and its prediction is symexp of the expected bin (paper eq. 9-11).
* Categorical latents with 1% unimix (paper sec. 4, "we parameterize the categorical distributions ... as
  mixtures of 1% uniform and 99% neural network output"), sampled with straight-through gradients
  (DreamerV2, Hafner et al. 2021, algorithm 1).
* KL balancing with free bits (paper eq. 5): L_dyn = max(1, KL[sg(q) || p]), L_rep = max(1, KL[q || sg(p)]),
  weighted 0.5 and 0.1; the clip is applied to the KL summed over all categoricals of a time step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

REWARD_BINS = 255  # DreamerV3: 255 bins ...
BIN_RANGE = 20.0  # ... equally spaced in symlog space over [-20, 20]


def symlog(x: Tensor) -> Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: Tensor) -> Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


def symlog_bins(n: int = REWARD_BINS, limit: float = BIN_RANGE) -> Tensor:
    """[n] bin centres in symlog space."""
    return torch.linspace(-limit, limit, n)


def twohot(y: Tensor, bins: Tensor) -> Tensor:
    """y [...] (already in the bins' space) -> [..., K] weights on the two nearest bins, linear in distance
    (paper eq. 10); values outside the bins' range go wholly to the end bin."""
    y = y.clamp(float(bins[0]), float(bins[-1]))
    hi = torch.searchsorted(bins, y.contiguous()).clamp(1, len(bins) - 1)
    lo = hi - 1
    w_hi = ((y - bins[lo]) / (bins[hi] - bins[lo])).clamp(0, 1)
    out = torch.zeros(*y.shape, len(bins), dtype=y.dtype, device=y.device)
    out.scatter_(-1, lo[..., None], (1 - w_hi)[..., None])
    out.scatter_add_(-1, hi[..., None], w_hi[..., None])
    return out


def twohot_symlog_loss(logits: Tensor, target: Tensor, bins: Tensor) -> Tensor:
    """Cross-entropy of logits [..., K] with the two-hot encoding of symlog(target) [...] -> [...]
    (in fp32 also under bf16 autocast, as DreamerV3 computes its distributions)."""
    return -(twohot(symlog(target.float()), bins.float()) * logits.float().log_softmax(-1)).sum(-1)


def twohot_symlog_mean(logits: Tensor, bins: Tensor) -> Tensor:
    """The prediction of a two-hot symlog head: symexp of the expected bin, logits [..., K] -> [...]."""
    return symexp((logits.float().softmax(-1) * bins.float()).sum(-1))


def unimix_log_probs(logits: Tensor, unimix: float) -> Tensor:
    """logits [..., C] -> log of (1 - unimix) * softmax + unimix / C, the distribution the RSSM samples
    from and the KL is computed on (keeps every class possible, so the KL stays finite and bounded).
    Computed in fp32 also under bf16 autocast."""
    probs = logits.float().softmax(-1)
    if unimix > 0:
        probs = (1 - unimix) * probs + unimix / logits.shape[-1]
    return probs.log()


def sample_onehot(log_probs: Tensor, uniform: Tensor) -> Tensor:
    """One categorical sample per row by inverse-CDF: log_probs [..., C], uniform [...] in [0, 1) drawn by
    the caller (so all randomness comes from its generator) -> one-hot [..., C], with straight-through
    gradients (value of the sample, gradient of the probabilities)."""
    probs = log_probs.exp()
    cdf = probs.detach().cumsum(-1)
    index = (cdf < uniform[..., None] * cdf[..., -1:]).sum(-1).clamp(max=probs.shape[-1] - 1)
    onehot = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
    return onehot + probs - probs.detach()


def mode_onehot(log_probs: Tensor) -> Tensor:
    """The most likely class of each categorical, one-hot [..., C] (deterministic filtering)."""
    return F.one_hot(log_probs.argmax(-1), log_probs.shape[-1]).to(log_probs.dtype)


def categorical_kl(log_p: Tensor, log_q: Tensor) -> Tensor:
    """KL[p || q] of independent categoricals [..., S, C] given as log-probs, summed over S and C -> [...]."""
    return (log_p.exp() * (log_p - log_q)).sum((-2, -1))


def kl_balance(post: Tensor, prior: Tensor, free_nats: float = 1.0, dyn_scale: float = 0.5,
               rep_scale: float = 0.1) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """DreamerV3's KL loss. post, prior: log-probs [..., S, C] (unimix applied).

    The dynamics loss trains the prior towards the (fixed) posterior; the representation loss trains the
    posterior towards the (fixed) prior, 5x weaker so the representations stay informative. Free bits: each
    term is clipped below at `free_nats` per time step, so nothing pushes a KL already under 1 nat lower
    (its gradient is zero there). Returns (loss, dyn, rep, kl), each the mean over the leading dims;
    `kl` is the unclipped KL for logging.
    """
    dyn = categorical_kl(post.detach(), prior)
    rep = categorical_kl(post, prior.detach())
    dyn_c, rep_c = dyn.clamp(min=free_nats), rep.clamp(min=free_nats)
    loss = dyn_scale * dyn_c.mean() + rep_scale * rep_c.mean()
    return loss, dyn_c.mean(), rep_c.mean(), dyn.detach().mean()
