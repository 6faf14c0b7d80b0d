"""Controllability: does the imagined future depend on the actions the way the real one does?

PSNR against ground truth cannot tell a model that follows actions from one that predicts the average
future: both can score well when actions change little in the frame. So we imagine two futures from the
SAME context under two different action sequences A and B, and compare each with BOTH real futures, which
the caller obtains by replaying the real environment from the clip's initial state (e.g. CartPole by
setting `env.unwrapped.state`; the replay is the caller's job, this module only does the math):

    score_t = 1/2 [PSNR(roll_A, gt_A) - PSNR(roll_A, gt_B)] + 1/2 [PSNR(roll_B, gt_B) - PSNR(roll_B, gt_A)]

averaged over clips, per imagined step t. A model that ignores actions produces the same frames under A
and B, so the two brackets cancel exactly: score 0. A model that follows actions is closer to its own
ground truth than to the other one: score > 0 (higher = more controllable). A negative score means the
model responds to actions the wrong way round. Both rollouts use the same random numbers (the generator
state is rewound before rollout B), so a stochastic action-ignoring model also scores exactly 0 rather
than 0 plus sampling noise.

A natural choice of B is the real action sequence of another clip in the batch (e.g. actions.roll(1, 0)).
Steps where the two real futures are identical carry no information and contribute 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from vidworld.eval.horizon import imagine
from vidworld.eval.metrics import psnr

if TYPE_CHECKING:
    from vidworld.protocol import WorldModel


@dataclass(frozen=True)
class ControllabilityResult:
    """score [H]: per-step controllability in dB (module docstring), mean: its mean over steps.

    matched_psnr [H]: mean PSNR of each rollout vs its own ground truth; crossed_psnr [H]: vs the other
    action sequence's ground truth (score = matched - crossed).
    """

    score: tuple[float, ...]
    mean: float
    matched_psnr: tuple[float, ...]
    crossed_psnr: tuple[float, ...]
    n_clips: int


def controllability(
    model: WorldModel,
    context_frames: Tensor,
    context_actions: Tensor,
    actions_a: Tensor,
    actions_b: Tensor,
    gt_a: Tensor,
    gt_b: Tensor,
    generator: torch.Generator | None = None,
) -> ControllabilityResult:
    """Controllability of `model` from one shared context under two action sequences.

    context_frames uint8 [B, K, 3, h, w], context_actions long [B, K-1]; actions_a, actions_b long [B, H]
    (index 0 = action at the last context frame); gt_a, gt_b uint8 [B, H, 3, h, w], the real frames that
    follow the context under actions_a / actions_b (gt[:, t] is reached by actions[:, t]).
    """
    b, h = actions_a.shape
    if actions_b.shape != actions_a.shape:
        raise ValueError(f"actions_a {tuple(actions_a.shape)} and actions_b {tuple(actions_b.shape)} differ")
    frame = tuple(context_frames.shape[2:])
    for name, gt in (("gt_a", gt_a), ("gt_b", gt_b)):
        if tuple(gt.shape) != (b, h, *frame):
            raise ValueError(f"{name} must be [B={b}, H={h}, *frame {frame}], got {tuple(gt.shape)}")
    rng_state = generator.get_state() if generator is not None else None
    roll_a = imagine(model, context_frames, context_actions, actions_a, generator).frames
    if generator is not None:
        generator.set_state(rng_state)  # common random numbers for both rollouts
    roll_b = imagine(model, context_frames, context_actions, actions_b, generator).frames
    gt_a, gt_b = gt_a.cpu(), gt_b.cpu()
    matched = (psnr(roll_a, gt_a) + psnr(roll_b, gt_b)) / 2  # [B, H]
    crossed = (psnr(roll_a, gt_b) + psnr(roll_b, gt_a)) / 2
    score = (matched - crossed).double().mean(0)
    return ControllabilityResult(
        score=tuple(score.tolist()),
        mean=score.mean().item(),
        matched_psnr=tuple(matched.double().mean(0).tolist()),
        crossed_psnr=tuple(crossed.double().mean(0).tolist()),
        n_clips=b,
    )
