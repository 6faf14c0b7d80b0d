"""World-model evaluation settings (YAML section `eval`), range-checked when built (see train/config.py)."""

from __future__ import annotations

from dataclasses import dataclass

from vidworld.config import MAX_SEED, check_field
from vidworld.precision import PRECISIONS


@dataclass
class EvalConfig:
    horizon: int = 15  # open-loop imagined steps scored against ground truth
    max_clips: int = 256  # held-out clips for PSNR/SSIM vs horizon (spread over the val split)
    controllability_clips: int = 64  # 0 = skip the controllability test
    batch_size: int = 64
    video_clips: int = 4  # clips in the side-by-side video
    seed: int = 0
    # arithmetic of the model's networks while scored: "fp32" (default), or "auto"/"bf16" to score the model
    # as the planners and the actor-critic run it (precision.py: bf16 where native, ~1.4x faster here)
    precision: str = "fp32"

    def __post_init__(self) -> None:
        for name in ("horizon", "max_clips", "batch_size", "video_clips"):
            check_field(self, name, ge=1)
        check_field(self, "controllability_clips", ge=0, note="0 = skip the controllability test")
        check_field(self, "seed", ge=0, lt=MAX_SEED)
        check_field(self, "precision", one_of=PRECISIONS)
