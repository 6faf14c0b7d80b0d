"""Lambda-returns and the percentile normaliser against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from vidworld.agents import PercentileNormalizer, lambda_returns


def test_lambda_returns_by_hand_with_termination_and_soft_continues():
    # H = 3, B = 2; rows are time t = 0..3. gamma 0.9, lambda 0.5.
    # column 0: the transition into s_2 terminates (c_2 = 0); column 1: every continue is 0.5.
    rewards = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    continues = torch.tensor([[1.0, 1.0], [1.0, 0.5], [0.0, 0.5], [1.0, 0.5]])
    values = torch.tensor([[10.0, 0.0], [20.0, 2.0], [30.0, 4.0], [40.0, 8.0]])
    got = lambda_returns(rewards, continues, values, discount=0.9, lam=0.5)
    # column 0:  R_3 = v_3 = 40
    #   R_2 = r_3 + 0.9 * 1 * (0.5 * 40 + 0.5 * 40) = 39
    #   R_1 = r_2 + 0.9 * 0 * (...)                 = 2     (termination: keep r_2, drop v_2 and R_2)
    #   R_0 = r_1 + 0.9 * 1 * (0.5 * 20 + 0.5 * 2)  = 10.9  (v_1 = 20 still counts: s_1 is live)
    # column 1:  R_3 = 8
    #   R_2 = 1 + 0.45 * (0.5 * 8 + 0.5 * 8)        = 4.6
    #   R_1 = 1 + 0.45 * (0.5 * 4 + 0.5 * 4.6)      = 2.935
    #   R_0 = 1 + 0.45 * (0.5 * 2 + 0.5 * 2.935)    = 2.110375
    want = torch.tensor([[10.9, 2.110375], [2.0, 2.935], [39.0, 4.6]])
    assert got.shape == (3, 2)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_lambda_returns_limits():
    H, B = 4, 3
    g = torch.Generator().manual_seed(0)
    r, v = torch.rand(H + 1, B, generator=g), torch.rand(H + 1, B, generator=g)
    c = torch.ones(H + 1, B)
    # lambda = 0: one-step TD targets r_{t+1} + gamma v_{t+1}
    torch.testing.assert_close(lambda_returns(r, c, v, 0.9, 0.0), r[1:] + 0.9 * v[1:])
    # lambda = 1, gamma = 1: the sum of the remaining rewards plus the value of the last state
    mc = torch.flip(torch.cumsum(torch.flip(r[1:], [0]), 0), [0]) + v[-1]
    torch.testing.assert_close(lambda_returns(r, c, v, 1.0, 1.0), mc)


def test_lambda_returns_shape_errors():
    with pytest.raises(ValueError, match=r"\[H\+1, B\]"):
        lambda_returns(torch.zeros(4, 2), torch.zeros(4, 3), torch.zeros(4, 2), 0.9, 0.95)
    with pytest.raises(ValueError, match="H >= 1"):
        lambda_returns(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), 0.9, 0.95)


def test_percentile_normalizer_two_updates_by_hand():
    norm = PercentileNormalizer(5.0, 95.0, decay=0.5, limit=1.0)
    # 0, 1, ..., 10: P5 = 0.5, P95 = 9.5 (linear interpolation at index 0.05 * 10 = 0.5)
    norm.update(torch.arange(11.0))
    assert float(norm.lo) == 0.25 and float(norm.hi) == 4.75  # 0.5 * 0 + 0.5 * P
    assert norm.scale() == 4.5
    # 0, 2, ..., 20: P5 = 1, P95 = 19
    norm.update(2 * torch.arange(11.0).reshape(11, 1))  # any shape: flattened
    assert float(norm.lo) == 0.625 and float(norm.hi) == 11.875
    assert norm.scale() == 11.25

    resumed = PercentileNormalizer(5.0, 95.0, decay=0.5)
    resumed.load_state_dict(norm.state_dict())
    for n in (norm, resumed):
        n.update(torch.arange(5.0))
    assert resumed.scale() == norm.scale() and float(resumed.lo) == float(norm.lo)


def test_percentile_normalizer_floor_and_default_decay():
    norm = PercentileNormalizer()  # 5 / 95, decay 0.99, limit 1
    norm.update(torch.arange(11.0))
    assert abs(float(norm.hi - norm.lo) - 0.09) < 1e-12  # 0.01 * (9.5 - 0.5): EMA starts at 0
    assert norm.scale() == 1.0  # max(1, 0.09): small return spreads are never scaled up
