"""Reduced-precision inference: `inference_autocast(device, "auto" | "fp32" | "bf16")`.

Planning spends almost all of its time in the denoiser's convolutions. On hardware with native bfloat16
(CPUs with AVX512-BF16 / AMX through oneDNN, CUDA GPUs of compute capability >= 8.0) running them under
`torch.autocast(dtype=torch.bfloat16)` is ~1.4x faster on the demo's 2 CPU cores (planning: README's table, 272 vs 383 ms
per decision) at equal planning quality (CEM in the demo model: 143.0 vs 136.0 mean return over 5
episodes, within noise). Where bfloat16 is emulated it is SLOWER than fp32, so "auto" picks it only where
the backend reports native support. Training and evaluation stay in fp32 unless configured otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device | str) -> bool:
    """True when bfloat16 convolutions/matmuls run natively (not emulated) on `device`.

    On CPUs that means the AVX512-BF16 or AMX-BF16 instructions. oneDNN's own flag
    (`torch.ops.mkldnn._is_mkldnn_bf16_supported`) is not enough: it is also true on plain AVX-512 CPUs,
    where oneDNN emulates bf16 and a latent denoiser runs ~3x SLOWER than in fp32 (measured 2026-12-07 on a
    2-core Xeon without AVX512-BF16: 393 vs 1176 imagined transitions/s, `bench/world_model.py`)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def cpu_has_native_bf16() -> bool:
    """The CPU's AVX512-BF16 / AMX-BF16 flags as torch reads them (`torch.cpu.get_capabilities`); False where
    this torch cannot tell (then "auto" stays in fp32, never the slow emulated path)."""
    try:
        caps = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):
        return False
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """"auto" -> "bf16" where native, else "fp32"; "fp32"/"bf16" pass through; anything else raises."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


@contextlib.contextmanager
def inference_autocast(device: torch.device | str, precision: str) -> Iterator[str]:
    """Context in which the model runs at `precision`; yields the resolved precision ("fp32" or "bf16")."""
    resolved = resolve_precision(precision, device)
    if resolved == "fp32":
        yield resolved
        return
    with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
        yield resolved
