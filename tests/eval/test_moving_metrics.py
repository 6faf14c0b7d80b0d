"""The moving-region mask and the scores inside it, on hand-made frames: a 2x2 'ball' moving over a static
textured background, where whole-frame PSNR cannot tell a misplaced ball from a right one."""

from __future__ import annotations

import math

import pytest
import torch

from vidworld.eval.horizon import evaluate_horizon
from vidworld.eval.metrics import masked_psnr, masked_ssim, psnr, ssim
from vidworld.eval.moving import frame_scores, moving_mask

S = 32  # frame side
BALL = 220


def background() -> torch.Tensor:
    """uint8 [3, S, S]: a fixed, non-uniform texture (values 0..59)."""
    r, c = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    tex = ((r * 7 + c * 13) % 60).to(torch.uint8)
    return torch.stack([tex, tex // 2, 59 - tex])


def with_ball(row: int, col: int) -> torch.Tensor:
    """The background with a 2x2 ball whose top-left pixel is (row, col)."""
    img = background().clone()
    img[:, row : row + 2, col : col + 2] = BALL
    return img


def test_moving_mask_is_the_changed_pixels_dilated_by_one():
    prev, cur = with_ball(10, 10), with_ball(10, 13)  # the ball moved 3 px right
    changed = torch.zeros(S, S, dtype=torch.bool)
    changed[10:12, 10:12] = True  # where it was (must be erased)
    changed[10:12, 13:15] = True  # where it is (must be drawn)
    assert torch.equal(moving_mask(prev, cur, dilation=0), changed)
    grown = torch.zeros(S, S, dtype=torch.bool)
    grown[9:13, 9:16] = True  # both 2x2 squares grown by 1 px touch: one 4x7 block
    assert torch.equal(moving_mask(prev, cur), grown)
    # batched [B, T, 3, H, W] -> [B, T, H, W]; a frame equal to its predecessor has an empty mask
    batch = moving_mask(torch.stack([prev, cur])[None], torch.stack([cur, cur])[None])
    assert batch.shape == (1, 2, S, S) and batch[0, 0].sum() == grown.sum() and not batch[0, 1].any()
    with pytest.raises(ValueError, match=r"frames \[..., 3, H, W\] of one shape"):
        moving_mask(prev, cur[:, :8])


def test_masked_psnr_sees_a_misplaced_ball_that_whole_frame_psnr_hides():
    prev, truth = with_ball(10, 10), with_ball(10, 13)
    misplaced = with_ball(25, 25)  # a ball, but far from where it is
    vanished = background()  # no ball at all
    mask = moving_mask(prev, truth)
    for wrong in (misplaced, vanished, prev):  # prev = copying the last frame
        whole = psnr(wrong[None], truth[None]).item()
        moving = masked_psnr(wrong[None], truth[None], mask[None]).item()
        assert whole > 22.0, whole  # only 4-8 of 1024 pixels are wrong: looks fine on the whole frame
        assert moving < 12.0, moving  # half the moving region is wrong by ~0.7
        assert whole - moving > 12.0
    # hand-computed: vanished ball, 4 wrong pixels (truth's ball) in a 4x7 = 28-pixel mask, all 3 channels
    bg = background().float() / 255
    err = ((BALL / 255 - bg[:, 10:12, 13:15]) ** 2).sum().item()
    expected = -10 * math.log10(err / (28 * 3))
    assert masked_psnr(vanished[None], truth[None], mask[None]).item() == pytest.approx(expected, abs=1e-4)
    # the right ball scores perfectly on both
    assert masked_psnr(truth[None], truth[None], mask[None]).item() == 100.0
    assert masked_ssim(truth[None], truth[None], mask[None]).item() == pytest.approx(1.0, abs=1e-6)
    # SSIM over the windows that hold the moving region falls much further than whole-frame SSIM
    assert masked_ssim(misplaced[None], truth[None], mask[None]).item() < ssim(misplaced[None], truth[None]).item() - 0.05


def test_empty_mask_gives_nan_and_bad_masks_are_refused():
    frame = with_ball(3, 3)
    empty = torch.zeros(1, S, S, dtype=torch.bool)
    assert math.isnan(masked_psnr(frame[None], frame[None], empty).item())
    assert math.isnan(masked_ssim(frame[None], frame[None], empty).item())
    with pytest.raises(ValueError, match=r"mask must be bool \[1, 32, 32\]"):
        masked_psnr(frame[None], frame[None], empty.float())
    # a ball at the very edge counts fully for SSIM (windows centred on it), not only through window tails
    edge = moving_mask(with_ball(0, 0), with_ball(0, 2))
    scores = frame_scores(with_ball(0, 0)[None, None], with_ball(0, 2)[None, None], edge[None, None])
    assert scores["moving_ssim"].item() < 0.8 < scores["ssim"].item()


class _Ball:
    """Test clips: the ball moves 2 px right per step on row 10, except at steps listed in `still`."""

    @staticmethod
    def clips(length: int, still: tuple[int, ...] = ()) -> dict[str, torch.Tensor]:
        col, frames = 2, []
        for t in range(length):
            if t > 0 and t not in still:
                col += 2
            frames.append(with_ball(10, col))
        f = torch.stack(frames)[None]  # [1, L, 3, S, S]
        zeros = torch.zeros(1, length - 1)
        return {"frames": f, "actions": zeros.long(), "rewards": zeros, "terminated": zeros.bool(),
                "truncated": zeros.bool()}


class _Misplacer:
    """A world model that draws the ball at the right column but 12 rows too low (wrong, plausible)."""

    from vidworld.protocol import ActionSpec

    action_spec = ActionSpec(n=1)
    context_length = 2
    frame_size = S
    feature_dim = 1
    device = torch.device("cpu")
    meta: dict = {}

    def init(self, frames, actions):
        last = frames[:, -1, 0]  # [B, S, S]
        return (last == BALL).nonzero()[:, 2].reshape(frames.shape[0], -1).min(1).values

    def step(self, col, actions, generator=None):
        from vidworld.protocol import StepOut

        nxt = col + 2
        zero = torch.zeros(col.shape[0])
        return nxt, StepOut(latent=nxt.float(), reward=zero, terminated=zero.bool(), termination_prob=zero)

    def decode(self, col):
        return torch.stack([with_ball(22, int(c)) for c in col])


def test_evaluate_horizon_reports_moving_region_beside_whole_frame():
    h = 4
    batch = _Ball.clips(2 + h, still=(3,))  # target step 2 (frame 3) equals its predecessor: empty mask
    result = evaluate_horizon(_Misplacer(), batch, context_length=2, horizon=h)
    assert result.n_valid == (1, 1, 1, 1) and result.moving_n_valid == (1, 0, 1, 1)
    assert math.isnan(result.model_moving_psnr[1]) and not math.isnan(result.model_psnr[1])
    for t in (0, 2, 3):
        assert result.model_psnr[t] > 20.0 and result.model_moving_psnr[t] < 12.0
        assert 0.0 < result.moving_fraction[t] < 0.05
    assert result.moving_fraction[1] == 0.0
    # copy-last at step 1 is wrong exactly where the ball moved
    assert result.copy_last_moving_psnr[0] < 12.0 < result.copy_last_psnr[0]
