import math

import torch

from vidworld.train.optim import adamw, lr_at, set_lr


def test_adamw_is_fused_on_cpu_and_minimises():
    w = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
    opt = adamw([w], lr=0.1, weight_decay=0.0)
    assert opt.defaults["fused"]  # torch >= 2.4 has the fused CPU kernel
    for _ in range(200):
        opt.zero_grad()
        (w**2).sum().backward()
        opt.step()
    assert w.abs().max() < 0.05


def test_lr_warms_up_linearly_then_decays_to_a_tenth():
    assert lr_at(0, 1.0, 10, 100) == 0.1 and lr_at(9, 1.0, 10, 100) == 1.0
    assert math.isclose(lr_at(10, 1.0, 10, 100), 1.0) and math.isclose(lr_at(100, 1.0, 10, 100), 0.1)
    opt = adamw([torch.nn.Parameter(torch.zeros(1))], lr=1.0, weight_decay=0.0)
    set_lr(opt, 0.5)
    assert opt.param_groups[0]["lr"] == 0.5
