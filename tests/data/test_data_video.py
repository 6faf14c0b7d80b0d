"""Video I/O: lossless round trip (incl. decord's odd-stride widths), viewer formats, bad files, atomicity."""

from __future__ import annotations

import os

import imageio.v2 as imageio
import numpy as np
import pytest

from vidworld.data import video
from vidworld.data.video import FrameReader, VideoReadError, read_video, write_gif, write_mp4, write_video


@pytest.mark.parametrize("size", [(8, 8), (16, 16), (17, 17), (32, 32), (48, 48), (24, 40)])
def test_lossless_round_trip(tmp_path, size):
    # Noise is the worst case for a codec; 8/16/24/48 px widths hit decord's padded-stride bug.
    frames = np.random.default_rng(0).integers(0, 256, (12, *size, 3), dtype=np.uint8)
    path = tmp_path / "a.mp4"
    write_video(path, frames, fps=15)
    back = read_video(path)
    assert back.shape == frames.shape
    err = np.abs(back.astype(int) - frames.astype(int))
    assert err.max() == 0, f"read-back error mean {err.mean():.3f} max {err.max()}"
    reader = FrameReader(path)
    assert reader.shape == (12, *size) and reader.fps == pytest.approx(15)
    np.testing.assert_array_equal(reader.get([7, 2, 3]), frames[[7, 2, 3]])
    with pytest.raises(IndexError, match="frame 12 out of range"):
        reader.get([12])
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # no temp file left


def test_written_files_get_normal_permissions(tmp_path):
    write_video(tmp_path / "a.mp4", np.zeros((2, 8, 8, 3), np.uint8))
    mode = (tmp_path / "a.mp4").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_viewer_formats(tmp_path):
    frames = np.random.default_rng(1).integers(0, 256, (5, 17, 33, 3), dtype=np.uint8)
    write_mp4(tmp_path / "v.mp4", frames, fps=10)
    back = read_video(tmp_path / "v.mp4")
    assert back.shape == (5, 18, 34, 3)  # padded to even sizes for yuv420p
    write_gif(tmp_path / "v.gif", frames, fps=10)
    gif = imageio.mimread(tmp_path / "v.gif")
    assert len(gif) == 5 and gif[0].shape[:2] == (17, 33)


def test_bad_frames_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"uint8 frames \[T>=1, H, W, 3\].*float64"):
        write_video(tmp_path / "a.mp4", np.zeros((3, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"\(3, 8, 8\)"):
        write_video(tmp_path / "a.mp4", np.zeros((3, 8, 8), np.uint8))
    assert not list(tmp_path.iterdir())


def _corrupt_files(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    write_video(tmp_path / "good.mp4", frames)
    data = (tmp_path / "good.mp4").read_bytes()
    (tmp_path / "garbage.mp4").write_bytes(b"not a video " * 50)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    return ["garbage", "empty", "truncated", "missing"]


def test_unreadable_files_raise_video_read_error_naming_the_file(tmp_path):
    for name in _corrupt_files(tmp_path):
        path = tmp_path / f"{name}.mp4"
        with pytest.raises(VideoReadError, match=str(path)):
            read_video(path)


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.mp4"
    old = np.full((3, 8, 8, 3), 7, np.uint8)
    write_video(path, old)
    monkeypatch.setattr(video.imageio_ffmpeg, "get_ffmpeg_exe", lambda: "false")  # ffmpeg "fails"
    with pytest.raises(OSError, match="ffmpeg failed writing"):
        write_video(path, np.zeros((3, 8, 8, 3), np.uint8))
    np.testing.assert_array_equal(read_video(path), old)
    assert sorted(os.listdir(tmp_path)) == ["a.mp4"]
