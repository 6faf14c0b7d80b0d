import math

import numpy as np
import pytest
import torch

from vidworld.eval.metrics import auroc, binary_accuracy, psnr, ssim, ssim_window_size


def test_psnr_of_known_mse():
    target = torch.full((2, 3, 4, 4), 0.1)
    assert psnr(torch.zeros_like(target), target) == pytest.approx(torch.tensor([20.0, 20.0]), abs=1e-4)
    # uint8: one value of 48 is off by the full range -> MSE = 1/48 -> 10 log10(48) dB.
    pred = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    tgt = pred.clone()
    tgt[0, 1, 2, 3] = 255
    assert psnr(pred, tgt).item() == pytest.approx(10 * math.log10(48), abs=1e-4)


def test_psnr_video_shape_identical_cap_and_errors():
    x = torch.rand(2, 5, 3, 8, 8)
    y = x.clone()
    y[1, 3] = 0.0
    out = psnr(x, y)
    assert out.shape == (2, 5)
    assert out[0].eq(100.0).all() and out[1, 3] < 100.0  # identical frames are capped at 100 dB
    assert psnr(x, x, max_db=60.0)[0, 0].item() == pytest.approx(60.0, abs=1e-3)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(x, y[:, :4])
    with pytest.raises(ValueError, match="uint8"):
        psnr(x.long(), y.long())


def test_ssim_window_shrinks_for_tiny_frames():
    assert ssim_window_size(64, 64) == (11, 1.5)
    assert ssim_window_size(16, 16) == (11, 1.5)
    assert ssim_window_size(12, 10) == (9, pytest.approx(1.5 * 9 / 11))
    assert ssim_window_size(8, 8) == (7, pytest.approx(1.5 * 7 / 11))
    with pytest.raises(ValueError, match="at least 3x3"):
        ssim_window_size(2, 8)


def test_ssim_identity_and_constant_images_by_hand():
    x = torch.rand(3, 2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim(x, x), torch.ones(3, 2), atol=1e-6)
    # Uniform images: variances and covariance are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    a, b, c1 = 0.2, 0.6, 0.01**2
    out = ssim(torch.full((1, 3, 12, 12), a), torch.full((1, 3, 12, 12), b))
    assert out.item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-6)


def test_ssim_decreases_with_noise_and_uint8_matches_float():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 32, 32, generator=g)
    x = torch.nn.functional.avg_pool2d(x, 3, 1, 1)  # some structure
    noise = torch.randn(x.shape, generator=g)
    values = [ssim((x + s * noise).clamp(0, 1), x).item() for s in (0.01, 0.05, 0.2, 0.5)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    xu = (x * 255).round().to(torch.uint8)
    yu = ((x + 0.05 * noise).clamp(0, 1) * 255).round().to(torch.uint8)
    assert ssim(xu, yu).item() == pytest.approx(ssim(xu.float() / 255, yu.float() / 255).item(), abs=1e-6)


def _numpy_ssim(x: np.ndarray, y: np.ndarray, size: int, sigma: float) -> float:
    """Direct per-window SSIM (Wang et al. 2004, Eq. 13-17) with explicit loops, for [C, H, W] images."""
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r**2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - size + 1):
            for j in range(x.shape[2] - size + 1):
                px, py = x[c, i : i + size, j : j + size], y[c, i : i + size, j : j + size]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
                cov = (w * (px - mx) * (py - my)).sum()
                vals.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


@pytest.mark.parametrize("hw", [(8, 8), (13, 12)])
def test_ssim_matches_numpy_reference(hw):
    rng = np.random.default_rng(0)
    x = rng.random((3, *hw))
    y = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1)
    size, sigma = ssim_window_size(*hw)
    ref = _numpy_ssim(x, y, size, sigma)
    got = ssim(torch.tensor(x[None], dtype=torch.float32), torch.tensor(y[None], dtype=torch.float32)).item()
    assert got == pytest.approx(ref, abs=1e-5)
    assert 0.0 < ref < 0.9


def test_auroc_hand_computed_with_ties():
    # Positive/negative pairs: 0.4>0.1 (1), 0.4=0.4 (1/2), 0.8>0.1 (1), 0.8>0.4 (1) -> 3.5 / 4.
    assert auroc(torch.tensor([0.1, 0.4, 0.4, 0.8]), torch.tensor([0, 0, 1, 1])) == pytest.approx(0.875)
    # Order of samples does not matter; bool labels work.
    shuffled = auroc(torch.tensor([0.8, 0.4, 0.1, 0.4]), torch.tensor([True, True, False, False]))
    assert shuffled == pytest.approx(0.875)
    assert auroc(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0, 1, 1])) == 1.0
    assert auroc(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1, 0, 0])) == 0.0
    assert auroc(torch.full((5,), 0.3), torch.tensor([0, 1, 0, 1, 0])) == pytest.approx(0.5)
    assert math.isnan(auroc(torch.tensor([0.1, 0.9]), torch.tensor([1, 1])))
    assert math.isnan(auroc(torch.tensor([0.1, 0.9]), torch.tensor([0, 0])))


def test_binary_accuracy():
    probs = torch.tensor([0.9, 0.2, 0.6, 0.5])
    labels = torch.tensor([True, False, False, True])
    assert binary_accuracy(probs, labels) == pytest.approx(0.5)  # 0.5 is not > 0.5
    assert binary_accuracy(probs, labels, threshold=0.4) == pytest.approx(0.75)
    assert math.isnan(binary_accuracy(torch.tensor([]), torch.tensor([], dtype=torch.bool)))
