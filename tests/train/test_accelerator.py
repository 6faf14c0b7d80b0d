"""One process trains models of different precisions in turn (`vidworld compare`: diffusion fp32, RSSM bf16)."""

from __future__ import annotations

import torch

from vidworld.train.checkpoint import make_accelerator
from vidworld.train.config import TrainConfig


def test_a_second_stage_may_use_another_mixed_precision(tmp_path):
    first = make_accelerator(TrainConfig(mixed_precision="no", tensorboard=False), tmp_path / "a")
    assert first.mixed_precision == "no"
    second = make_accelerator(TrainConfig(mixed_precision="bf16", tensorboard=False), tmp_path / "b")
    assert second.mixed_precision == "bf16"
    model = torch.nn.Linear(4, 4)
    with second.autocast():
        assert model(torch.randn(2, 4)).dtype == torch.bfloat16
    third = make_accelerator(TrainConfig(mixed_precision="no", tensorboard=False), tmp_path / "c")
    with third.autocast():
        assert model(torch.randn(2, 4)).dtype == torch.float32


def test_auto_mixed_precision_is_bf16_only_where_the_cpu_runs_it_natively(tmp_path, monkeypatch):
    for native, expected in ((True, "bf16"), (False, "no")):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda native=native: {"avx512_bf16": native})
        acc = make_accelerator(TrainConfig(mixed_precision="auto", tensorboard=False), tmp_path / expected)
        assert acc.mixed_precision == expected
