"""World-model evaluation settings (YAML section `eval`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvalConfig:
    horizon: int = 15  # open-loop imagined steps scored against ground truth
    max_clips: int = 256  # held-out clips for PSNR/SSIM vs horizon (spread over the val split)
    controllability_clips: int = 64
    batch_size: int = 64
    video_clips: int = 4  # clips in the side-by-side video
    seed: int = 0
