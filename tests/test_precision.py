import pytest
import torch

from tests.models.tiny import random_context, tiny_world_model
from vidworld.precision import inference_autocast, native_bf16, resolve_precision


def test_precision_names_are_checked_and_auto_follows_the_hardware():
    with pytest.raises(ValueError, match=r"precision must be one of .*'fp16'"):
        resolve_precision("fp16", "cpu")
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu") == ("bf16" if native_bf16("cpu") else "fp32")


def test_inference_autocast_runs_the_model_in_bf16_and_fp32_leaves_it_alone():
    model = tiny_world_model()
    frames, actions = random_context(4)
    def g():
        return torch.Generator().manual_seed(0)

    with inference_autocast("cpu", "fp32") as p:
        assert p == "fp32" and not torch.is_autocast_enabled("cpu")
        _, ref = model.step(model.init(frames, actions), torch.tensor([0, 1, 0, 1]), generator=g())
    with inference_autocast("cpu", "bf16") as p:
        assert p == "bf16" and torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        _, low = model.step(model.init(frames, actions), torch.tensor([0, 1, 0, 1]), generator=g())
    assert not torch.is_autocast_enabled("cpu")
    assert low.latent.dtype == torch.float32  # the sampler's state stays fp32; only the network runs in bf16
    assert torch.isfinite(low.latent).all()
    err = (low.latent - ref.latent).abs().max()
    assert 0 < err < 0.1 * ref.latent.abs().max()  # really bf16 (differs), and close


@pytest.mark.parametrize(("caps", "expected"), [
    ({"avx512_bf16": True, "amx_bf16": False}, "bf16"),
    ({"avx512_bf16": False, "amx_bf16": True}, "bf16"),
    # plain AVX-512 (oneDNN still calls bf16 "supported" there, by emulation, ~3x slower than fp32): fp32
    ({"avx512_bf16": False, "amx_bf16": False, "avx512_f": True, "avx512_bw": True}, "fp32"),
])
def test_auto_picks_bf16_only_on_cpus_with_native_bf16_instructions(monkeypatch, caps, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps)
    assert resolve_precision("auto", "cpu") == expected


def test_auto_stays_fp32_where_torch_cannot_read_the_cpu_flags(monkeypatch):
    def missing():
        raise AttributeError("no get_capabilities in this torch")

    monkeypatch.setattr(torch.cpu, "get_capabilities", missing)
    assert resolve_precision("auto", "cpu") == "fp32"
