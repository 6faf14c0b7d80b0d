"""The moving-region mask: which pixels of a ground-truth frame show something that moves.

Whole-frame PSNR/SSIM average over every pixel. In an Atari frame almost all of them are static background
(Breakout's ball is 2x2 px of a 64x64 frame: 0.1%), so a model that draws the ball in the wrong place, or
not at all, loses almost nothing against one that gets it right, and copying the last frame looks good.
Scores restricted to the moving region see exactly those failures.

Definition (`moving_mask`), for target frame x_t with its real predecessor x_{t-1}:

    M_t = dilate_1px( OR_over_channels( x_t != x_{t-1} ) )        (3x3 max filter)

i.e. every pixel whose colour changed between the two REAL frames by at least one grey level, grown by one
pixel in each direction (8-neighbourhood). Why this one:

* It holds both places where something moved: where the object is now (the model must draw it) and where
  it was (the model must erase it). A smeared paddle or a vanished ball fails on it; copying the last frame
  fails on it at step 1 by construction.
* It depends on ground truth only, so every model, copy-last and the VAE are scored on the same pixels.
* It needs two frames of the clip, nothing else: frames are stored losslessly (data/README.md), so a static
  background is bit-identical between frames and the threshold "any change" has no noise to ignore; no
  per-episode background (a median needs the whole episode decoded, and keeps an object that stands
  still half of the episode as "background").
* The 1-px dilation covers the anti-aliased rim that area-averaged downscaling (envs/pixels.py) puts
  around a moving object, and a prediction one pixel off: a ball drawn 1 px away is then partly in the
  mask rather than wholly outside it.

What it does not see: an object drawn where nothing moved (a hallucinated ball far from any motion), and
an object that did not move at this step. Those stay visible in the whole-frame numbers, reported beside.
Frames where nothing moved (empty mask: 17% of CartPole's 64x64 steps, many no-op MiniGrid actions) have
no moving-region score; per-step means are over the frames whose mask is non-empty (counted in n).
Moving-region SSIM is the mean SSIM of the 11x11 windows centred on the masked pixels (images reflect-
padded at the border, so a paddle at the frame's edge counts fully: `vidworld.eval.metrics.masked_ssim`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from vidworld.eval.metrics import masked_psnr, masked_ssim, psnr, ssim

MOVING_DILATION = 1  # pixels the changed region is grown by, in each direction

MOVING_MASK_DEFINITION = (
    "pixels where the real frame t differs from the real frame t-1 in any channel (exact, lossless frames), "
    f"dilated by {MOVING_DILATION} px (3x3 max filter); frames with an empty mask are left out of the means"
)


def moving_mask(previous: Tensor, current: Tensor, dilation: int = MOVING_DILATION) -> Tensor:
    """bool [..., H, W]: the moving region of `current` (module docstring).

    previous, current: uint8 [..., 3, H, W] (same shape), consecutive real frames.
    """
    if previous.shape != current.shape or previous.dim() < 3 or previous.shape[-3] != 3:
        raise ValueError(f"moving_mask: previous and current must be frames [..., 3, H, W] of one shape, got "
                         f"{tuple(previous.shape)} and {tuple(current.shape)}")
    if dilation < 0:
        raise ValueError(f"moving_mask: dilation must be >= 0 pixels, got {dilation}")
    changed = (previous != current).any(-3)  # [..., H, W]
    if dilation == 0:
        return changed
    flat = changed.reshape(-1, 1, *changed.shape[-2:]).float()
    grown = F.max_pool2d(flat, 2 * dilation + 1, stride=1, padding=dilation) > 0
    return grown.reshape(changed.shape)


def frame_scores(pred: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """Whole-frame and moving-region scores of pred vs target, each [B, T] (moving ones nan where the mask
    is empty): keys psnr, ssim, moving_psnr, moving_ssim. pred, target uint8 [B, T, 3, H, W]; mask bool
    [B, T, H, W]."""
    return {
        "psnr": psnr(pred, target),
        "ssim": ssim(pred, target),
        "moving_psnr": masked_psnr(pred, target, mask),
        "moving_ssim": masked_ssim(pred, target, mask),
    }
