"""Image and classifier metrics for world-model evaluation: PSNR, SSIM (whole frame or inside a pixel mask),
AUROC, accuracy.

Images are uint8 in [0, 255] or float in [0, 1], shaped [B, 3, H, W] (one value per image) or
[B, T, 3, H, W] (one value per frame, [B, T]). uint8 inputs are divided by 255, so the data range is 1.0
for both (1/255 per grey level).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# Identical images have infinite PSNR; we floor the MSE so means over clips stay finite. 1e-10 caps PSNR at
# 100 dB, far above the ~89 dB of a single one-grey-level error in a 64x64 uint8 frame, so any real error
# still ranks below a perfect match.
PSNR_MSE_FLOOR = 1e-10

# Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment: from error visibility to structural
# similarity", Sec. III-C: 11x11 circular-symmetric gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def to_unit_float(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float32 [0, 1]; floating images are returned as float32 unchanged."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.dtype.is_floating_point:
        raise ValueError(f"images must be uint8 in [0, 255] or float in [0, 1], got dtype {images.dtype}")
    return images.float()


def _flatten_pair(pred: Tensor, target: Tensor, name: str) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    """Check shapes and flatten [B, (T,) C, H, W] to [N, C, H, W]; returns the leading shape to restore."""
    if pred.shape != target.shape:
        raise ValueError(
            f"{name}: pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    if pred.dim() not in (4, 5):
        raise ValueError(f"{name}: expected images [B, C, H, W] or [B, T, C, H, W], got {tuple(pred.shape)}")
    lead = tuple(pred.shape[:-3])
    c, h, w = pred.shape[-3:]
    return to_unit_float(pred).reshape(-1, c, h, w), to_unit_float(target).reshape(-1, c, h, w), lead


def psnr(pred: Tensor, target: Tensor, max_db: float | None = None) -> Tensor:
    """Peak signal-to-noise ratio in dB with data range 1.0, one value per image.

    pred, target: [B, 3, H, W] -> [B], or [B, T, 3, H, W] -> [B, T]; uint8 or float in [0, 1].
    PSNR = 10 log10(1 / MSE), MSE over channels and pixels of one image. MSE is floored at
    `PSNR_MSE_FLOOR` (100 dB), or at the MSE giving `max_db` if that is given.
    """
    p, t, lead = _flatten_pair(pred, target, "psnr")
    mse = (p - t).pow(2).flatten(1).mean(1)
    floor = PSNR_MSE_FLOOR if max_db is None else 10.0 ** (-max_db / 10.0)
    return (-10.0 * torch.log10(mse.clamp_min(floor))).reshape(lead)


def ssim_window_size(height: int, width: int) -> tuple[int, float]:
    """Gaussian window (size, sigma) for SSIM on an H x W image.

    The standard 11x11 / sigma 1.5 window needs images of at least 11 px. For the tiny 8-16 px test frames
    we shrink it to the largest odd size that fits (8 px -> 7x7) and scale sigma with it (1.5 * size / 11),
    so the window keeps the same shape relative to its support. Images >= 11 px get the standard window.
    """
    size = min(SSIM_WINDOW, height, width)
    if size % 2 == 0:
        size -= 1
    if size < 3:
        raise ValueError(f"ssim needs images of at least 3x3 pixels, got {height}x{width}")
    return size, SSIM_SIGMA * size / SSIM_WINDOW


def gaussian_window(size: int, sigma: float) -> Tensor:
    """Normalised 2-D gaussian window [size, size] (outer product of a 1-D gaussian), float64."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim_map(pred: Tensor, target: Tensor, centred: bool = False) -> Tensor:
    """Local SSIM (Wang et al. 2004) per window position, averaged over channels.

    pred, target: [B, 3, H, W] or [B, T, 3, H, W]; uint8 or float in [0, 1]. See `ssim` for the statistics.
    centred=False: 'valid' windows only, float32 [B, (T,) H - s + 1, W - s + 1] (s: `ssim_window_size`),
    position (i, j) = the window whose top-left pixel is (i, j). centred=True: one window centred on every
    pixel, [B, (T,) H, W], the images reflect-padded by s // 2 (a pixel at the border gets a window of its
    own neighbourhood, mirrored, instead of only the low-weight tail of windows 5 px inside).
    """
    p, t, lead = _flatten_pair(pred, target, "ssim")
    p, t = p.float(), t.float()
    c = p.shape[1]
    size, sigma = ssim_window_size(p.shape[-2], p.shape[-1])
    if centred:
        half = size // 2
        p, t = (F.pad(x, (half, half, half, half), mode="reflect") for x in (p, t))
    # The gaussian window is separable: filter rows then columns (2*size taps instead of size^2), and filter
    # all five statistics in one grouped conv. float32 (float64 convs are ~20x slower on CPU); variances are
    # clamped at 0 so that rounding cannot make a uniform image's variance negative.
    g1 = gaussian_window(size, sigma).sum(0).float().to(p.device)  # the 1-D gaussian (rows of the outer product)
    # Centre each image first: variances/covariances are shift-invariant, and centring removes the float32
    # cancellation in E[x^2] - E[x]^2 (uniform images then give exactly zero variance).
    mp, mt = p.mean(dim=(-2, -1), keepdim=True), t.mean(dim=(-2, -1), keepdim=True)
    pc, tc = p - mp, t - mt
    stats = torch.cat([pc, tc, pc * pc, tc * tc, pc * tc], dim=1)  # [N, 5c, H, W]
    n = stats.shape[1]
    with torch.autocast(device_type=stats.device.type, enabled=False):  # a model scored under bf16 autocast
        stats = F.conv2d(stats, g1.view(1, 1, size, 1).expand(n, 1, size, 1), groups=n)  # keeps fp32 metrics
        stats = F.conv2d(stats, g1.view(1, 1, 1, size).expand(n, 1, 1, size), groups=n)
    mu_pc, mu_tc, e_pp, e_tt, e_pt = stats.split(c, dim=1)
    var_p = (e_pp - mu_pc**2).clamp_min(0)
    var_t = (e_tt - mu_tc**2).clamp_min(0)
    cov = e_pt - mu_pc * mu_tc
    mu_p, mu_t = mu_pc + mp, mu_tc + mt
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # (K L)^2 with data range L = 1
    num = (2 * mu_p * mu_t + c1) * (2 * cov + c2)
    den = (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    smap = (num / den).mean(1).float()  # [N, h', w']
    return smap.reshape(*lead, *smap.shape[-2:])


def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """Structural similarity (Wang et al. 2004), one value per image, averaged over channels.

    pred, target: [B, 3, H, W] -> [B], or [B, T, 3, H, W] -> [B, T]; uint8 or float in [0, 1].
    Local statistics are gaussian-weighted (window from `ssim_window_size`), computed with a depthwise
    conv2d over 'valid' positions only (no padding), as in the authors' reference MATLAB code; the
    covariances are the weighted (biased) ones of the paper, Eq. (14)-(16). The SSIM map is averaged over
    positions and channels (mean SSIM, Eq. 17). Unlike the MATLAB code we do not downsample large images.
    """
    return ssim_map(pred, target).flatten(-2).mean(-1)


# ------------------------------------------------------------------------------ scores inside a pixel mask
def _check_mask(mask: Tensor, pred: Tensor, name: str) -> Tensor:
    want = (*pred.shape[:-3], *pred.shape[-2:])
    if mask.dtype != torch.bool or tuple(mask.shape) != want:
        raise ValueError(f"{name}: mask must be bool {list(want)} (images without the channel axis), "
                         f"got {mask.dtype} {list(mask.shape)}")
    return mask


def masked_psnr(pred: Tensor, target: Tensor, mask: Tensor, max_db: float | None = None) -> Tensor:
    """PSNR (dB, data range 1.0) over the pixels where `mask` is True, all channels; nan where it is empty.

    pred, target: [B, (T,) 3, H, W], uint8 or float in [0, 1]; mask bool [B, (T,) H, W]. Returns [B, (T,)].
    MSE floored as in `psnr`.
    """
    _check_mask(mask, pred, "masked_psnr")
    p, t, lead = _flatten_pair(pred, target, "masked_psnr")
    m = mask.reshape(-1, 1, *mask.shape[-2:]).to(p.device, p.dtype)
    count = m.flatten(1).sum(1) * p.shape[1]
    mse = ((p - t).pow(2) * m).flatten(1).sum(1) / count.clamp_min(1)
    floor = PSNR_MSE_FLOOR if max_db is None else 10.0 ** (-max_db / 10.0)
    db = -10.0 * torch.log10(mse.clamp_min(floor))
    return db.where(count > 0, torch.full_like(db, math.nan)).reshape(lead)


def masked_ssim(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean SSIM of the windows centred on the masked pixels (`ssim_map(centred=True)`); nan where the mask
    is empty. Centred windows, not the 'valid' ones of `ssim`: with 'valid' windows an object within 5 px
    of the border (a paddle, a ball at a wall) only reaches the low-weight tails of the nearest windows and
    barely counts. pred, target [B, (T,) 3, H, W]; mask bool [B, (T,) H, W] -> [B, (T,)]."""
    _check_mask(mask, pred, "masked_ssim")
    return masked_mean(ssim_map(pred, target, centred=True), mask)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of values [..., h, w] where mask bool [..., h, w] is True -> [...]; nan where none is."""
    m = mask.to(values.device, values.dtype)
    count = m.flatten(-2).sum(-1)
    mean = (values * m).flatten(-2).sum(-1) / count.clamp_min(1)
    return mean.where(count > 0, torch.full_like(mean, math.nan))


def _as_1d(x: Tensor) -> Tensor:
    return torch.as_tensor(x).detach().reshape(-1).cpu()


def auroc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic.

    scores: [N] float, higher = more positive; labels: [N] bool/0-1. Tied scores get their average rank,
    which counts a tied (positive, negative) pair as 1/2. Returns nan when either class is absent.
    AUROC = (sum of positive ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg), ranks starting at 1.
    """
    s = _as_1d(scores).double()
    y = _as_1d(labels).bool()
    if s.shape != y.shape:
        raise ValueError(f"auroc: scores and labels differ in length: {s.numel()} vs {y.numel()}")
    n_pos = int(y.sum())
    n_neg = y.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = torch.argsort(s)
    sorted_s = s[order]
    # Average rank of each tie group: groups are runs of equal sorted scores.
    _, inverse, counts = torch.unique_consecutive(sorted_s, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()  # 1-based rank of each group's last member
    avg_rank = ends - (counts.double() - 1) / 2
    ranks = torch.empty_like(s)
    ranks[order] = avg_rank[inverse]
    u = ranks[y].sum().item() - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def binary_accuracy(probs: Tensor, labels: Tensor, threshold: float = 0.5) -> float:
    """Fraction of predictions (probs > threshold) equal to labels; probs [N] in [0, 1], labels [N] bool.

    Note: with rare positives (CartPole terminations, ~1 in 22) always predicting False scores ~0.95;
    compare against 1 - positive rate, or use `auroc`. Returns nan for empty inputs.
    """
    p = _as_1d(probs)
    y = _as_1d(labels).bool()
    if p.shape != y.shape:
        raise ValueError(f"binary_accuracy: probs and labels differ in length: {p.numel()} vs {y.numel()}")
    if p.numel() == 0:
        return math.nan
    return ((p > threshold) == y).double().mean().item()
