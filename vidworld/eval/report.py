"""Human-readable evaluation outputs: markdown tables, plots, side-by-side videos, JSON.

Every file is written atomically (temp file in the same folder, then os.replace), so an interrupted run
never leaves a half-written report over a good one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vidworld.atomic import atomic_path, atomic_write_text
from vidworld.data.video import check_fps
from vidworld.eval.horizon import HorizonResult


def _fmt(x: float | None, digits: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def horizon_table(result: HorizonResult) -> str:
    """Markdown table, one row per imagined step: PSNR (dB) and SSIM of the model, copy-last, VAE ceiling,
    over the whole frame and (when computed) over the moving region (`vidworld.eval.moving`: "moving n" =
    targets with a non-empty mask, "moving px" = mean share of pixels in it)."""
    vae = result.vae_psnr is not None
    who = ["model", "copy-last"] + (["VAE ceiling"] if vae else [])
    head = ["step", "clips"] + [f"{w} PSNR" for w in who] + [f"{w} SSIM" for w in who]
    if result.has_moving:
        head += ["moving n", "moving px"] + [f"{w} moving PSNR" for w in who] + [f"{w} moving SSIM" for w in who]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in range(result.horizon):
        row = [str(t + 1), str(result.n_valid[t])]
        row += [_fmt(result.model_psnr[t], 2), _fmt(result.copy_last_psnr[t], 2)]
        row += [_fmt(result.vae_psnr[t], 2)] if vae else []
        row += [_fmt(result.model_ssim[t], 3), _fmt(result.copy_last_ssim[t], 3)]
        row += [_fmt(result.vae_ssim[t], 3)] if vae else []
        if result.has_moving:
            row += [str(result.moving_n_valid[t]), _fmt(100 * result.moving_fraction[t], 1) + "%"]
            row += [_fmt(result.model_moving_psnr[t], 2), _fmt(result.copy_last_moving_psnr[t], 2)]
            row += [_fmt(result.vae_moving_psnr[t], 2)] if vae else []
            row += [_fmt(result.model_moving_ssim[t], 3), _fmt(result.copy_last_moving_ssim[t], 3)]
            row += [_fmt(result.vae_moving_ssim[t], 3)] if vae else []
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _save_figure(fig: Any, path: str | os.PathLike) -> None:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)


def plot_psnr_vs_horizon(result: HorizonResult, path: str | os.PathLike, title: str | None = None) -> None:
    """PNG of mean PSNR vs imagined step: model, copy-last-frame reference and (if known) VAE ceiling; a second
    panel with the same over the moving region (when computed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, result.horizon + 1)
    panels = [("whole frame", result.model_psnr, result.copy_last_psnr, result.vae_psnr)]
    if result.has_moving:
        panels.append(("moving region (changed from the previous real frame, +1 px)", result.model_moving_psnr,
                       result.copy_last_moving_psnr, result.vae_moving_psnr))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (name, model, copy_last, vae) in zip(axes[0], panels, strict=True):
        ax.plot(steps, _nan(model), "o-", label="model")
        ax.plot(steps, _nan(copy_last), "s--", label="copy last frame")
        if vae is not None:
            ax.plot(steps, _nan(vae), ":", color="gray", label="VAE ceiling")
        ax.set_xlabel("imagined step")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or f"open-loop PSNR vs horizon (K={result.context_length}, {result.n_clips} clips)")
    _save_figure(fig, path)


def _nan(values: Sequence[float | None]) -> list[float]:
    """None (a nan read back from JSON) -> nan, so matplotlib leaves a gap."""
    return [math.nan if v is None else v for v in values]


def plot_training_curves(
    rows: Sequence[dict[str, Any]],
    path: str | os.PathLike,
    x: str = "step",
    keys: Sequence[str] | None = None,
) -> None:
    """PNG of logged metrics vs `x`, one panel per training stage (rows' "stage" key; one panel if absent).

    By default every numeric key except `x` and bookkeeping ("lr", "epoch") is a curve; rows missing a key
    are skipped for that curve. A panel uses a log y-scale when all its values are > 0.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    skip = {x, "lr", "epoch"}
    if keys is None:
        keys = sorted({k for r in rows for k, v in r.items()
                       if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)})
    if not keys:
        raise ValueError(
            f"plot_training_curves: nothing to plot: no numeric metrics in {len(rows)} rows; pass keys="
        )
    stages = list(dict.fromkeys(str(r.get("stage", "")) for r in rows))
    fig, axes = plt.subplots(1, len(stages), figsize=(5.5 * len(stages), 4), squeeze=False)
    for ax, stage in zip(axes[0], stages, strict=True):
        positive = True
        for key in keys:
            pts = [(r[x], r[key]) for r in rows
                   if str(r.get("stage", "")) == stage and x in r and isinstance(r.get(key), (int, float))]
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            positive &= all(y > 0 for y in ys)
            ax.plot(xs, ys, label=key)
        if positive:
            ax.set_yscale("log")
        ax.set_title(f"{stage} stage" if stage else "training")
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("mean over each logging window")
    _save_figure(fig, path)


def side_by_side_frames(gt: Tensor, imagined: Tensor, upscale: int = 4, max_clips: int = 4) -> np.ndarray:
    """Compose video frames: ground truth left, imagined right, clips stacked vertically.

    gt, imagined: uint8 [T, 3, H, W] or [B, T, 3, H, W] (same shape). Returns uint8 [T, H', W', 3] with
    nearest-neighbour upscaling (so 64 px frames stay crisp), white separators, dims padded to even sizes
    (required by yuv420p H.264).
    """
    if gt.shape != imagined.shape:
        raise ValueError(
            f"gt {tuple(gt.shape)} and imagined {tuple(imagined.shape)} must have the same shape"
        )
    if gt.dim() == 4:
        gt, imagined = gt[None], imagined[None]
    if gt.dim() != 5 or gt.shape[2] != 3 or gt.dtype != torch.uint8 or imagined.dtype != torch.uint8:
        raise ValueError(
            f"expected uint8 videos [T, 3, H, W] or [B, T, 3, H, W], got {gt.dtype} {tuple(gt.shape)}"
        )
    gt, imagined = gt[:max_clips].cpu(), imagined[:max_clips].cpu()
    sep = max(1, upscale // 2)
    gap = torch.full((*gt.shape[:3], gt.shape[3], sep), 255, dtype=torch.uint8)
    up = [x.repeat_interleave(upscale, -2).repeat_interleave(upscale, -1) for x in (gt, imagined)]
    gap = gap.repeat_interleave(upscale, -2)
    rows = torch.cat([up[0], gap, up[1]], dim=-1)  # [B, T, 3, h, w']
    hgap = torch.full((*rows.shape[:3], sep, rows.shape[-1]), 255, dtype=torch.uint8)
    parts = []
    for i in range(rows.shape[0]):
        parts += [rows[i], hgap[i]] if i < rows.shape[0] - 1 else [rows[i]]
    video = torch.cat(parts, dim=-2)  # [T, 3, H', W']
    pad_h, pad_w = video.shape[-2] % 2, video.shape[-1] % 2
    video = torch.nn.functional.pad(video, (0, pad_w, 0, pad_h), value=255)
    return video.permute(0, 2, 3, 1).contiguous().numpy()


def side_by_side_video(
    gt: Tensor, imagined: Tensor, path: str | os.PathLike, fps: int = 10, upscale: int = 4, max_clips: int = 4
) -> Path:
    """Write a gt-vs-imagined video (see `side_by_side_frames`) as .mp4 (H.264) or .gif, by suffix.

    GIFs are lossless for these few-colour frames but the GIF writer merges identical consecutive frames
    into one longer frame (playback timing is unchanged); mp4 keeps every frame but is lossy.
    """
    path = Path(path)
    check_fps(fps, f"side_by_side_video({path})")
    frames = side_by_side_frames(gt, imagined, upscale, max_clips)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".mp4":
            import imageio.v2 as iio2

            # macro_block_size=1: keep our exact size (dims are already even) instead of resizing to x16.
            with iio2.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=1) as w:
                for frame in frames:
                    w.append_data(frame)
        elif suffix == ".gif":
            import imageio.v3 as iio

            iio.imwrite(tmp, frames, extension=".gif", duration=1000.0 / fps, loop=0)
        else:
            raise ValueError(
                f"side_by_side_video: unsupported video suffix {path.suffix!r}; use .mp4 or .gif"
            )
    return path


def _jsonable(x: Any) -> Any:
    """Dataclasses/tuples/tensors -> plain JSON types; non-finite floats -> None (strict JSON has no NaN)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (Tensor, np.ndarray)):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json(result: Any, path: str | os.PathLike) -> None:
    """Write a result dataclass (or dict) as indented JSON, atomically; nan/inf become null."""
    text = json.dumps(_jsonable(result), indent=2, allow_nan=False) + "\n"
    atomic_write_text(path, text)
