"""Lambda-returns and the percentile return normaliser of DreamerV3 (Hafner et al. 2023, Eq. 5 and 7).

Time-major alignment (the same as `imagination.Trajectory`): index t = 0..H is the t-th imagined state s_t.

    rewards[t]    r_t: the reward of the transition INTO s_t (rewards[0] is unused: s_0 is the real start)
    continues[t]  c_t: probability that the episode goes on after entering s_t, i.e. 1 - the termination
                  probability the model predicted for the transition into s_t (continues[0] is unused)
    values[t]     v_t = V(s_t), the critic's value of s_t

    R_t = r_{t+1} + gamma * c_{t+1} * ((1 - lambda) * v_{t+1} + lambda * R_{t+1}),   t = H-1, ..., 0
    R_H = v_H                                                 (the last state bootstraps with its value)

So a termination on the transition into s_{t+1} (c_{t+1} = 0) keeps that transition's reward r_{t+1} and cuts
everything after it: neither v_{t+1} nor R_{t+1} reaches R_t. A continue probability in (0, 1) weighs the
future by the chance it happens (the expected return when termination is a coin flip). lambda = 1 gives the
discounted Monte-Carlo return bootstrapped at H, lambda = 0 the one-step TD target. This is DreamerV3's
`lambda_return` (agent.py) and DIAMOND's `compute_lambda_returns` up to the index shift (DIAMOND stores the
reward and end flag of a transition at its *source* step).
"""

from __future__ import annotations

import torch
from torch import Tensor


def lambda_returns(rewards: Tensor, continues: Tensor, values: Tensor, discount: float, lam: float) -> Tensor:
    """rewards, continues, values: [H+1, B] (see the module docstring) -> returns [H, B] for s_0..s_{H-1}.

    Differentiable in all three inputs (dynamics backprop flows through rewards, continues and values).
    """
    if not (rewards.shape == continues.shape == values.shape) or rewards.dim() != 2 or rewards.shape[0] < 2:
        raise ValueError(
            "rewards, continues and values must all be [H+1, B] with H >= 1, got "
            f"{tuple(rewards.shape)}, {tuple(continues.shape)}, {tuple(values.shape)}"
        )
    live = discount * continues[1:]  # [H, B]: gamma * c_{t+1}
    one_step = rewards[1:] + live * (1.0 - lam) * values[1:]  # the part of R_t that needs no recursion
    out = []
    ret = values[-1]
    for t in reversed(range(live.shape[0])):
        ret = one_step[t] + live[t] * lam * ret
        out.append(ret)
    return torch.stack(out[::-1])


class PercentileNormalizer:
    """Return scale S = max(limit, EMA(Per(R, 95)) - EMA(Per(R, 5))) (DreamerV3 Eq. 7, `retnorm`).

    The actor's advantage is (R_t - v_t) / S: divided by the spread of the returns, never multiplied up when
    the returns span less than `limit` (1 reward unit), so rare small rewards are not amplified into noise
    while large returns are scaled down. The low percentile is tracked (as in DreamerV3) but only the range
    enters the advantage. EMA as DreamerV3's default (`debias: False`): both percentiles start at 0 and move
    by (1 - decay) towards each batch's percentile; `update` folds the batch in before the scale is read.
    Percentiles interpolate linearly between order statistics (torch.quantile, numpy's default).
    """

    def __init__(self, low: float = 5.0, high: float = 95.0, decay: float = 0.99, limit: float = 1.0):
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
        if not 0.0 <= decay < 1.0 or limit <= 0.0:
            raise ValueError(f"need decay in [0, 1) and limit > 0, got decay {decay}, limit {limit}")
        self.q = torch.tensor([low / 100.0, high / 100.0], dtype=torch.float64)
        self.decay, self.limit = decay, limit
        self.lo = torch.zeros((), dtype=torch.float64)
        self.hi = torch.zeros((), dtype=torch.float64)

    def update(self, returns: Tensor) -> None:
        """Fold a batch of returns (any shape) into the EMAs of its low/high percentiles."""
        lo, hi = torch.quantile(returns.detach().flatten().to(torch.float64).cpu(), self.q)
        self.lo = self.decay * self.lo + (1.0 - self.decay) * lo
        self.hi = self.decay * self.hi + (1.0 - self.decay) * hi

    def scale(self) -> float:
        """max(limit, hi - lo): what advantages are divided by."""
        return max(self.limit, float(self.hi - self.lo))

    def state_dict(self) -> dict:
        return {"lo": self.lo.clone(), "hi": self.hi.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.lo = state["lo"].clone().to(torch.float64)
        self.hi = state["hi"].clone().to(torch.float64)
