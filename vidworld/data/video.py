"""Video files: lossless episode storage (write with imageio-ffmpeg, read with decord) and viewer videos.

Episode videos (`write_video` / `read_video` / `FrameReader`) use H.264 in RGB (`libx264rgb`, `-crf 0`),
which is exactly lossless: read-back error 0 (measured; yuv444p at crf 0 gives max 2 levels from the
RGB<->YUV round trip, yuv420p up to ~50 levels on sharp edges). Such files need an H.264 4:4:4 decoder
(ffmpeg, decord, VLC; browsers don't play them): use `write_mp4` (yuv420p) or `write_gif` for videos
meant for people.

decord 0.6 quirk handled here (dmlc/decord#336): for some frame widths (4, 6, 8, 12, 16, 24, 48, 72, ...:
those where 3 * align32(W) is a multiple of W but W is not a multiple of 32) it reports the padded row
stride as extra channels, e.g. a 16x16 frame comes back as [16, 16, 6] and `get_batch` fails. The padded
rows are intact, so `FrameReader` decodes such files frame by frame and crops each row to 3 * W bytes.

Every failure decord reports (garbage, empty or truncated file, broken container or stream) raises
`VideoReadError` naming the file: decord raises `RuntimeError` on open but `decord._ffi.base.DECORDError`
(not a RuntimeError) on some corrupt containers and while decoding. Damage inside the H.264 stream can
also decode "successfully" into wrong pixels; the episode store catches that with per-frame sums.
"""

from __future__ import annotations

import math
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np

from vidworld.atomic import atomic_path

# Episode videos: H.264 in RGB, crf 0 = lossless.
_LOSSLESS = ["-vcodec", "libx264rgb", "-pix_fmt", "rgb24", "-crf", "0", "-preset", "fast"]


class VideoReadError(ValueError):
    """A video file cannot be decoded (missing, empty, truncated or corrupt)."""


def _decord():
    import decord
    from decord._ffi.base import DECORDError

    return decord, DECORDError


def _check_frames(frames: np.ndarray, what: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"{what}: expected uint8 frames [T>=1, H, W, 3], got {frames.dtype} {frames.shape}")
    return frames


def check_fps(fps: float, what: str) -> float:
    """A frame rate every writer can use: finite and > 0 (ffmpeg refuses 0 after a partial write, the GIF
    writer divides by it, and a negative one overflows deep inside Pillow)."""
    try:
        ok = math.isfinite(float(fps)) and float(fps) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{what}: fps must be a finite number > 0, got {fps!r}")
    return float(fps)


def _atomic_write(path: Path, frames: np.ndarray, fps: float, **writer_kwargs) -> None:
    """Encode to a temp file in the same folder, then rename: a crash never leaves a half file at `path`."""
    # macro_block_size=1: keep sizes that are not multiples of 16 instead of resizing them.
    with atomic_path(path) as tmp, imageio.get_writer(str(tmp), format="FFMPEG", fps=fps, macro_block_size=1,
                                                      **writer_kwargs) as w:
        for frame in frames:
            w.append_data(np.ascontiguousarray(frame))


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 15) -> None:
    """Write uint8 frames [T, H, W, 3] losslessly (H.264 RGB, crf 0) to `path`, atomically.

    Runs imageio-ffmpeg's ffmpeg binary directly with all frames on stdin (one pipe write; ~20 ms for a
    short episode against ~33 ms through imageio's per-frame writer, which matters for many short
    episodes), then checks that decord reads back T frames of H x W before renaming into place.
    """
    frames = np.ascontiguousarray(_check_frames(frames, f"write_video({path})"))
    check_fps(fps, f"write_video({path})")
    t, h, w, _ = frames.shape
    path = Path(path)
    with atomic_path(path) as tmp:
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt",
               "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", *_LOSSLESS, "-f", "mp4", str(tmp)]
        proc = subprocess.run(cmd, check=False, input=memoryview(frames).cast("B"), capture_output=True)
        if proc.returncode != 0:
            raise OSError(f"ffmpeg failed writing {path}: {proc.stderr.decode(errors='replace').strip()}")
        reader = FrameReader(str(tmp))
        if reader.shape != (t, h, w):
            raise OSError(f"writing {path}: wrote {(t, h, w)} frames but reads back {reader.shape}")
        del reader


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float = 15, quality: int = 8) -> None:
    """Write uint8 frames [T, H, W, 3] as a widely playable mp4 (H.264 yuv420p, lossy) for viewing.

    Odd sizes are padded by one pixel (yuv420p needs even sizes) rather than resized.
    """
    frames = _check_frames(frames, f"write_mp4({path})")
    check_fps(fps, f"write_mp4({path})")
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    _atomic_write(Path(path), frames, fps, codec="libx264", pixelformat="yuv420p", quality=quality)


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: float = 15, loop: int = 0) -> None:
    """Write uint8 frames [T, H, W, 3] as an animated GIF (frame duration in ms, as imageio wants)."""
    frames = _check_frames(frames, f"write_gif({path})")
    check_fps(fps, f"write_gif({path})")
    path = Path(path)
    with atomic_path(path) as tmp:
        imageio.mimsave(str(tmp), list(frames), format="GIF", duration=1000.0 / fps, loop=loop)


class FrameReader:
    """Random access to the frames of one video via decord. Not picklable: open one per process.

    Shapes: `get(indices)` -> uint8 [n, H, W, 3]; `shape` = (T, H, W).
    Raises VideoReadError naming the file for anything decord cannot decode.
    """

    def __init__(self, path: str | os.PathLike, num_threads: int = 1):
        # One decode thread: readers live in DataLoader workers on few cores; more threads just contend.
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoReadError(f"video file not found: {self.path}")
        if self.path.stat().st_size == 0:
            raise VideoReadError(f"cannot read video {self.path}: the file is empty")
        decord, DECORDError = _decord()
        self._errors = (RuntimeError, DECORDError)
        try:
            self._vr = decord.VideoReader(str(self.path), num_threads=num_threads)
            n = len(self._vr)
            first = self._vr[0].asnumpy() if n > 0 else None
            self._vr.seek(0)
        except self._errors as e:
            raise VideoReadError(f"cannot read video {self.path} (corrupt or truncated?): {_short(e)}") from None
        if first is None:
            raise VideoReadError(f"cannot read video {self.path}: it has no frames")
        self.height = first.shape[0]
        # Width from decord's shape is right even when its channel count is the padded-stride artefact.
        self.width = first.shape[1]
        self._row_bytes = first.shape[1] * first.shape[2]
        self._padded = first.shape[2] != 3
        self.length = n
        self.fps = float(self._vr.get_avg_fps())

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.length, self.height, self.width)

    def __len__(self) -> int:
        return self.length

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at `indices` as uint8 [n, H, W, 3]."""
        indices = [int(i) for i in indices]
        for i in indices:
            if not 0 <= i < self.length:
                raise IndexError(f"frame {i} out of range for {self.path} with {self.length} frames")
        try:
            if not self._padded:
                return self._vr.get_batch(indices).asnumpy()
            out = np.empty((len(indices), self.height, self.width, 3), np.uint8)
            for k, i in enumerate(indices):
                raw = self._vr[i].asnumpy().reshape(self.height, self._row_bytes)
                out[k] = raw[:, : 3 * self.width].reshape(self.height, self.width, 3)
            return out
        except self._errors as e:
            raise VideoReadError(f"cannot decode frames of {self.path} (corrupt?): {_short(e)}") from None

    def read_all(self) -> np.ndarray:
        """All frames as uint8 [T, H, W, 3]."""
        return self.get(range(self.length))


def _short(e: BaseException) -> str:
    """decord's messages carry a C++ stack trace; keep the first line."""
    return str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Decode a whole video as uint8 [T, H, W, 3] (raises VideoReadError naming the file if it cannot)."""
    return FrameReader(path).read_all()
