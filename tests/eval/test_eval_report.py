import json
import math

import imageio.v3 as iio
import pytest
import torch
from PIL import Image

from vidworld.eval.horizon import HorizonResult, evaluate_horizon
from vidworld.eval.report import (
    horizon_table,
    plot_psnr_vs_horizon,
    plot_training_curves,
    side_by_side_video,
    write_json,
)

K, H = 3, 4


@pytest.fixture
def result(toy) -> HorizonResult:
    return evaluate_horizon(toy.ToyModel(follow=False), toy.make_clips(6, K + H, seed=1), K, H)


def _only(tmp_path):
    """Files in tmp_path: atomic writes must leave no temp files behind."""
    return sorted(p.name for p in tmp_path.iterdir())


def test_horizon_table(result):
    lines = horizon_table(result).strip().splitlines()
    assert len(lines) == 2 + H
    assert lines[0].split("|")[1:-1] == [
        " step ", " clips ", " model PSNR ", " copy-last PSNR ", " VAE ceiling PSNR ",
        " model SSIM ", " copy-last SSIM ", " VAE ceiling SSIM ",
        " moving n ", " moving px ", " model moving PSNR ", " copy-last moving PSNR ", " VAE ceiling moving PSNR ",
        " model moving SSIM ", " copy-last moving SSIM ", " VAE ceiling moving SSIM ",
    ]
    cells = [c.strip() for c in lines[2].split("|")[1:-1]]
    assert cells[0] == "1" and cells[1] == str(result.n_valid[0])
    assert cells[2] == f"{result.model_psnr[0]:.2f}" and cells[7] == f"{result.vae_ssim[0]:.3f}"
    assert cells[8] == str(result.moving_n_valid[0]) and cells[10] == f"{result.model_moving_psnr[0]:.2f}"
    no_vae = HorizonResult(K, 1, 0, (0,), (math.nan,), (math.nan,), (math.nan,), (math.nan,))
    assert horizon_table(no_vae).strip().splitlines()[2] == "| 1 | 0 | - | - | - | - |"


def test_plots_are_readable_pngs(result, tmp_path):
    plot_psnr_vs_horizon(result, tmp_path / "psnr.png")
    rows = [{"step": i, "loss": 1.0 / (i + 1), "vae_loss": 2.0 / (i + 1), "lr": 1e-3} for i in range(20)]
    rows.append({"step": 20, "eval/psnr": 30.0})  # rows without the key are skipped
    plot_training_curves(rows, tmp_path / "curves.png")
    for name in ("psnr.png", "curves.png"):
        img = iio.imread(tmp_path / name)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert _only(tmp_path) == ["curves.png", "psnr.png"]
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_training_curves([{"step": 0, "lr": 1.0}], tmp_path / "x.png")


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_side_by_side_video_reads_back(toy, tmp_path, suffix):
    clips = toy.make_clips(3, 6, seed=2)["frames"]  # [3, 6, 3, 8, 8]
    imagined = 255 - clips
    path = side_by_side_video(clips, imagined, tmp_path / f"v{suffix}", fps=5, upscale=4, max_clips=2)
    frames = iio.imread(path, index=None)
    # 2 clips of 8 px x4 = 32 px, separators of 2 px: height 32 + 2 + 32 = 66, width 32 + 2 + 32 = 66.
    assert frames.shape[:3] == (6, 66, 66)
    if suffix == ".gif":  # lossless palette: the left half is the upscaled ground truth
        expected = clips[0, 0].permute(1, 2, 0).repeat_interleave(4, 0).repeat_interleave(4, 1).numpy()
        assert (frames[0, :32, :32, :3] == expected).all()
    single = side_by_side_video(clips[0], imagined[0], tmp_path / f"one{suffix}", fps=10, upscale=1)
    back = iio.imread(single, index=None)
    assert back.shape[1:3] == (8, 18)  # 8 + 1 + 8 = 17, padded to even
    if suffix == ".mp4":
        assert back.shape[0] == 6
    else:  # GIF writers merge identical consecutive frames (this clip holds still once), keeping the timing
        with Image.open(single) as im:
            durations = [(im.seek(i), im.info["duration"])[1] for i in range(im.n_frames)]
        assert len(durations) == back.shape[0] <= 6 and sum(durations) == 600
    assert _only(tmp_path) == sorted([f"v{suffix}", f"one{suffix}"])


def test_side_by_side_video_errors_leave_nothing(toy, tmp_path):
    clips = toy.make_clips(2, 4, seed=2)["frames"]
    with pytest.raises(ValueError, match="unsupported video suffix"):
        side_by_side_video(clips, clips, tmp_path / "v.avi")
    with pytest.raises(ValueError, match="same shape"):
        side_by_side_video(clips, clips[:, :3], tmp_path / "v.mp4")
    assert _only(tmp_path) == []


def test_write_json_round_trip(result, tmp_path):
    path = tmp_path / "out" / "horizon.json"
    write_json(result, path)
    data = json.loads(path.read_text())
    assert data["horizon"] == H and data["model_psnr"] == pytest.approx(list(result.model_psnr))
    write_json({"a": math.nan, "b": torch.tensor([1.5, math.inf]), "c": (1, 2)}, path)  # overwrite in place
    assert json.loads(path.read_text()) == {"a": None, "b": [1.5, None], "c": [1, 2]}
    assert _only(path.parent) == ["horizon.json"]


def test_training_curves_get_one_panel_per_stage(tmp_path):
    rows = [{"stage": "vae", "step": i, "loss": 1.0 / (i + 1), "rec_mse": 0.5 / (i + 1)} for i in range(5)]
    rows += [{"stage": "dynamics", "step": i, "denoise": 0.1, "term_bce": 0.2, "lr": 1e-4} for i in range(5)]
    plot_training_curves(rows, tmp_path / "one.png")
    plot_training_curves([r for r in rows if r["stage"] == "vae"], tmp_path / "two.png")
    wide, narrow = iio.imread(tmp_path / "one.png"), iio.imread(tmp_path / "two.png")
    assert wide.shape[0] == narrow.shape[0] and wide.shape[1] > 1.8 * narrow.shape[1]
