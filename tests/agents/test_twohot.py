"""Symlog two-hot: transforms, encoding, decoding and the loss against hand-computed values."""

from __future__ import annotations

import math

import torch

from vidworld.agents import TwoHot, symexp, symlog


def test_symlog_symexp_round_trip():
    x = torch.tensor([-1e6, -37.5, -1.0, -1e-3, 0.0, 1e-3, 0.5, 1.0, 300.0, 1e6])
    torch.testing.assert_close(symexp(symlog(x)), x, rtol=1e-5, atol=1e-6)
    assert abs(float(symlog(torch.tensor(math.e - 1))) - 1.0) < 1e-6  # log(1 + (e - 1)) = 1
    assert float(symlog(torch.tensor(0.0))) == 0.0


def test_encode_by_hand():
    th = TwoHot(5, -2.0, 2.0)  # bins -2, -1, 0, 1, 2 in symlog space
    assert th.bins.tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    y = torch.tensor([math.expm1(0.25), -math.expm1(1.5), 0.0, 1e6, -1e6, math.expm1(2.0)])
    want = torch.tensor([
        [0, 0, 0.75, 0.25, 0],  # symlog 0.25: between bins 0 and 1, closer to 0
        [0.5, 0.5, 0, 0, 0],  # symlog -1.5: halfway between -2 and -1
        [0, 0, 1, 0, 0],  # exactly on a bin
        [0, 0, 0, 0, 1],  # beyond the grid: the end bin
        [1, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],  # exactly on the last bin
    ])
    torch.testing.assert_close(th.encode(y), want, rtol=0, atol=1e-6)


def test_decode_round_trip_and_exact_zero():
    th = TwoHot()  # 255 bins on [-20, 20]
    y = torch.tensor([-5000.0, -3.0, -0.01, 0.0, 0.2, 1.0, 17.0, 123456.0])
    logits = torch.log(th.encode(y))  # probabilities = the two-hot itself (zero weights -> -inf logits)
    torch.testing.assert_close(th.decode(logits), y, rtol=1e-4, atol=1e-5)
    # a zero-initialised critic predicts exactly 0 (symmetric bins, symmetric sum)
    assert th.decode(torch.zeros(3, 255)).tolist() == [0.0, 0.0, 0.0]


def test_loss_by_hand():
    th = TwoHot(5, -2.0, 2.0)
    logits = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0], requires_grad=True)
    loss = th.loss(logits, torch.tensor(math.expm1(0.25)))
    # target 0.75 on bin 2, 0.25 on bin 3; log_softmax_i = i - lse, lse = log(sum_i e^i)
    lse = math.log(sum(math.exp(i) for i in range(5)))
    assert abs(loss.item() - (-(0.75 * (2 - lse) + 0.25 * (3 - lse)))) < 1e-5  # = lse - 2.25
    loss.backward()  # gradient = softmax - target
    want = torch.softmax(logits.detach(), -1) - torch.tensor([0, 0, 0.75, 0.25, 0])
    torch.testing.assert_close(logits.grad, want)
