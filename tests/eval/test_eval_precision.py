"""`eval.precision`: a model can be scored (and timed) in the arithmetic the planners run it in, while the
metrics themselves stay float32."""

from __future__ import annotations

import json

import pytest
import torch

from vidworld.eval.config import EvalConfig
from vidworld.eval.metrics import ssim
from vidworld.eval.run import evaluate_world_model
from vidworld.protocol import ActionSpec
from vidworld.world_models.copy_last import CopyLastFrameModel


class AutocastProbe(CopyLastFrameModel):
    """Copy-last that records, at every step, the dtype a CPU matmul would run in (bf16 under autocast)."""

    seen: list

    def step(self, state, actions, generator=None):
        probe = torch.ones(2, 2) @ torch.ones(2, 2)
        self.seen.append(probe.dtype)
        return super().step(state, actions, generator=generator)


def test_ssim_stays_float32_under_bf16_autocast():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g)
    y = (x + 0.1 * torch.randn(2, 3, 16, 16, generator=g)).clamp(0, 1)
    ref = ssim(x, y)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        got = ssim(x, y)
    assert got.dtype == torch.float32 and torch.equal(got, ref)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_eval_scores_the_model_in_the_configured_precision(cartpole_fixture, tmp_path, precision):
    model = AutocastProbe(ActionSpec(n=2), 2, 64, meta={"env_id": "CartPole-v1"})
    model.seen = []
    cfg = EvalConfig(horizon=2, max_clips=4, controllability_clips=0, batch_size=4, video_clips=1,
                     precision=precision)
    report = evaluate_world_model(model, str(cartpole_fixture), cfg, tmp_path / "eval", val_fraction=0.5,
                                  progress=False)
    expected = torch.bfloat16 if precision == "bf16" else torch.float32
    assert model.seen and set(model.seen) == {expected}  # rollouts, heads, speed and video alike
    assert report.precision == precision
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["precision"] == precision


def test_eval_precision_is_checked():
    with pytest.raises(ValueError, match="precision"):
        EvalConfig(precision="fp16")
