"""Several world models on one table and one chart: the same held-out clips, targets and seeds for all.

    vidworld eval-wm --model runs/demo/model --model runs/rssm/model --horizon 50

Each model is evaluated by `evaluate_world_model` with held-out windows cut for the LONGEST context among
them (a model with a shorter context sees the newest frames of the same window), so imagined step t of every
model is scored against the same real frame. Outputs in --out: one sub-folder per model (its own full
report), `compare.md` / `compare.json` (PSNR/SSIM at selected horizons over the whole frame and over the
moving region (`vidworld.eval.moving`), termination AUROC, controllability, imagined transitions/s; a row per
autoencoder ceiling) and `psnr_vs_horizon.png` (every model, copy-last, VAE ceilings; whole frame and
moving region).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from vidworld.atomic import atomic_write_text
from vidworld.eval.config import EvalConfig
from vidworld.eval.report import _save_figure, write_json
from vidworld.eval.run import EvalReport, evaluate_world_model


def model_names(paths: list[str]) -> list[str]:
    """Readable unique names: a folder called "model" is named after its run folder (runs/demo/model -> demo)."""
    names = []
    for p in paths:
        path = Path(p).resolve()
        name = path.parent.name if path.name == "model" else path.name
        base, i = name, 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names.append(name)
    return names


def evaluate_models(models: dict[str, Any], data_path: str, cfg: EvalConfig, out_dir: Path, val_fraction: float,
                    split_seed: int, progress: bool = True) -> dict[str, EvalReport]:
    window = max(m.context_length for m in models.values())
    reports = {}
    for name, model in models.items():
        reports[name] = evaluate_world_model(model, data_path, cfg, out_dir / name, val_fraction, split_seed,
                                             progress=progress, window_context=window)
    steps = [t for t in (1, 5, 15, 50) if t <= cfg.horizon] or [cfg.horizon]
    atomic_write_text(out_dir / "compare.md", compare_table(reports, steps) + "\n")
    write_json({name: r.summary() for name, r in reports.items()}, out_dir / "compare.json")
    plot_models_psnr(reports, out_dir / "psnr_vs_horizon.png")
    return reports


def _f(x: float | None, digits: int) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def compare_table(reports: dict[str, EvalReport], steps: list[int]) -> str:
    """One row per model (and per model's autoencoder ceiling, and copy-last): PSNR and SSIM at `steps` over
    the whole frame and over the moving region, termination AUROC, controllability, imagined transitions/s."""
    first = next(iter(reports.values())).horizon
    moving = all(r.horizon.has_moving for r in reports.values())
    head = ["model"] + [f"PSNR {t}" for t in steps] + [f"SSIM {t}" for t in steps]
    if moving:
        head += [f"moving PSNR {t}" for t in steps] + [f"moving SSIM {t}" for t in steps]
    head += ["term. AUROC", "controllability (dB)", "imagined transitions/s (batch 64)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    h = first
    rows = [("copy last frame", (h.copy_last_psnr, h.copy_last_ssim, h.copy_last_moving_psnr, h.copy_last_moving_ssim),
             None, None, None)]
    for n, r in reports.items():
        h = r.horizon
        rows.append((n, (h.model_psnr, h.model_ssim, h.model_moving_psnr, h.model_moving_ssim),
                     r.heads.imagined.termination_auroc, r.controllability.mean if r.controllability else None,
                     r.speed.transitions_per_s if r.speed else None))
        if h.vae_psnr is not None:
            rows.append((f"{n} autoencoder ceiling", (h.vae_psnr, h.vae_ssim, h.vae_moving_psnr, h.vae_moving_ssim),
                         None, None, None))
    for name, (psnr, ssim, m_psnr, m_ssim), auroc, ctrl, rate in rows:
        cells = [name] + [_f(psnr[t - 1], 2) for t in steps] + [_f(ssim[t - 1], 3) for t in steps]
        if moving:
            cells += [_f(m_psnr[t - 1], 2) for t in steps] + [_f(m_ssim[t - 1], 3) for t in steps]
        cells += [_f(auroc, 3), _f(ctrl, 2), _f(rate, 0)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_models_psnr(reports: dict[str, EvalReport], path: Path) -> None:
    """PSNR (top row) and SSIM (bottom row) vs imagined step of every model, its autoencoder ceiling and
    copy-last: whole frame (left), and moving region (right, when every report has it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(reports.values())).horizon
    steps = np.arange(1, first.horizon + 1)
    regions = [("whole frame", "")]
    if all(r.horizon.has_moving for r in reports.values()):
        regions.append(("moving region (changed from the previous real frame, +1 px)", "moving_"))
    metrics = [("psnr", "PSNR (dB)"), ("ssim", "SSIM")]
    fig, axes = plt.subplots(len(metrics), len(regions), figsize=(7 * len(regions), 4.2 * len(metrics)),
                             squeeze=False)
    for row, (metric, ylabel) in enumerate(metrics):
        for col, (title, prefix) in enumerate(regions):
            ax, key = axes[row][col], f"{prefix}{metric}"
            for name, r in reports.items():
                line, = ax.plot(steps, getattr(r.horizon, f"model_{key}"), "o-", ms=3, label=name)
                if getattr(r.horizon, f"vae_{key}") is not None:
                    ax.plot(steps, getattr(r.horizon, f"vae_{key}"), ":", color=line.get_color(),
                            label=f"{name} autoencoder ceiling")
            ax.plot(steps, getattr(first, f"copy_last_{key}"), "s--", color="gray", ms=3, label="copy last frame")
            ax.set_xlabel("imagined step")
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"open-loop PSNR and SSIM vs horizon ({first.n_clips} held-out clips, same for every model)")
    fig.tight_layout()
    _save_figure(fig, path)
