"""Imagination speed of any world model, measured the same way for every kind (for tables that compare them).

Rate = imagined transitions per second of `model.step` on a batch of real contexts (no pixel decoding), in
the process's current thread setting, best of a few timed repeats. The machine is shared and noisy: compare
models measured in the same run, not across runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from vidworld.protocol import WorldModel, repeat_state


@dataclass(frozen=True)
class ImaginationSpeed:
    batch: int
    transitions_per_s: float


@torch.no_grad()
def imagination_speed(model: WorldModel, batch: dict, size: int = 64, seconds: float = 1.5) -> ImaginationSpeed:
    """batch: a clip batch (frames uint8 [b, L, 3, H, W], actions [b, L-1]); its first context is repeated
    to `size` rows and stepped under a fixed action for about `seconds`."""
    K = model.context_length
    frames = batch["frames"][:1, :K].to(model.device)
    actions = batch["actions"][:1, : K - 1].to(model.device)
    state = repeat_state(model.init(frames, actions), size)
    acts = torch.zeros(size, dtype=torch.long, device=model.device)
    g = torch.Generator(device=model.device).manual_seed(0)
    model.step(state, acts, generator=g)  # warm-up (allocations, lazy init)
    best = 0.0
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3 or n == 0:
            model.step(state, acts, generator=g)
            n += 1
        best = max(best, n * size / (time.perf_counter() - t0))
    return ImaginationSpeed(batch=size, transitions_per_s=best)
