"""compare.md / compare.json and the comparison's plots, from the pairs' records (rewritten after each pair)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from vidworld.atomic import atomic_write_text
from vidworld.compare.config import BudgetConfig, CompareConfig
from vidworld.compare.records import PairRecord
from vidworld.eval.report import _save_figure


def _f(x: float | None, digits: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def table(records: list[PairRecord], prof: BudgetConfig) -> str:
    hs = [str(t) for t in prof.fidelity.report_horizons]
    head = ["model", "consumer", f"return ({prof.eval_episodes} ep. x {len(prof.seeds)} seeds)", "per seed",
            "real steps", "wall min", "imagined transitions spent", "acting decisions/s",
            f"PSNR {' / '.join(hs)} (dB)", f"SSIM {hs[-1]}", "controllability (dB)", "imagined trans./s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        fid = r.fidelity or {}
        psnr = " / ".join(_f(fid["psnr"].get(t), 2) for t in hs) if fid else "- (renders no pixels)"
        ssim = _f(fid["ssim"].get(hs[-1]), 3) if fid else "-"
        imag = f"{r.imagined_transitions:.3g}" if r.imagined_transitions is not None else "-"
        lines.append(f"| {r.model} | {r.consumer} | **{r.return_mean:.1f}** ± {r.return_std:.1f} | "
                     f"{', '.join(f'{x:.0f}' for x in r.seed_returns)} | {r.real_steps:.0f} | {r.wall_minutes:.1f} | "
                     f"{imag} | {_f(r.decisions_per_s, 0)} | {psnr} | {ssim} | "
                     f"{_f(fid.get('controllability_db'), 2)} | {_f(fid.get('imagined_transitions_per_s'), 0)} |")
    return "\n".join(lines)


def answers(records: list[PairRecord]) -> list[str]:
    """The questions the table is for, answered from its numbers."""
    out = []
    best = max(records, key=lambda r: r.return_mean)
    out.append(f"- Best return at the same real-step budget: **{best.model}+{best.consumer}** "
               f"({best.return_mean:.1f} after {best.real_steps:.0f} real steps).")
    per_min = max(records, key=lambda r: r.return_mean / max(r.wall_minutes, 1e-9))
    out.append(f"- Best return per wall-clock minute: **{per_min.model}+{per_min.consumer}** "
               f"({per_min.return_mean / max(per_min.wall_minutes, 1e-9):.2f} per minute).")
    spent = [r for r in records if r.imagined_transitions]
    if spent:
        per_imag = max(spent, key=lambda r: r.return_mean / r.imagined_transitions)
        out.append(f"- Best return per million imagined transitions: **{per_imag.model}+{per_imag.consumer}** "
                   f"({per_imag.return_mean / per_imag.imagined_transitions * 1e6:.2f}).")
    video = [r for r in records if r.fidelity]
    if len(video) >= 2:
        h = max(video[0].fidelity["psnr"], key=int)
        sharp = max(video, key=lambda r: r.fidelity["psnr"][h] or -1)
        out.append(f"- Highest open-loop PSNR at step {h}: **{sharp.model}+{sharp.consumer}** "
                   f"({sharp.fidelity['psnr'][h]:.2f} dB); its return ranks "
                   f"{sorted(records, key=lambda r: -r.return_mean).index(sharp) + 1} of {len(records)}.")
    return out


def write_report(records: list[PairRecord], prof: BudgetConfig, root: Path, cfg: CompareConfig,
                 minutes: float) -> None:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = [f"# {cfg.env_id} ({cfg.frame_size}x{cfg.frame_size} pixels): every model x consumer, "
            f"{prof.real_steps} real steps each", "",
            f"Written {when} by `vidworld compare` ({len(records)} of {len(cfg.pairs)} pairs done, "
            f"{minutes:.0f} min in this invocation). Return: greedy evaluation after the budget, "
            f"env seeds {100_000}+, mean over seeds ± std over all their episodes.", "",
            table(records, prof), "", *answers(records), ""]
    atomic_write_text(root / "compare.md", "\n".join(text))
    atomic_write_text(root / "compare.json", json.dumps({"env_id": cfg.env_id, "frame_size": cfg.frame_size,
                                                         "real_steps_budget": prof.real_steps,
                                                         "seeds": prof.seeds, "written": when,
                                                         "pairs": [r.as_dict() for r in records]}, indent=2))
    plot_returns(records, root)
    plot_fidelity(records, root / "fidelity" / "psnr_vs_horizon.png")
    plot_error_vs_return(records, root / "error_vs_return.png")


def _mean_curve(r: PairRecord, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (mean over seeds at each evaluation index), mean return, std over seeds; cut to the shortest run."""
    n = min(len(c) for c in r.curves)
    x = np.array([[c[i][key] for i in range(n)] for c in r.curves]).mean(0)
    y = np.array([[c[i]["return_mean"] for i in range(n)] for c in r.curves])
    return x, y.mean(0), y.std(0)


def _axes(size: tuple[float, float]):
    """A new figure with one axes, on the headless backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)


def plot_returns(records: list[PairRecord], root: Path) -> None:
    for key, label, name in (("real_steps", "real env steps", "return_vs_real_steps.png"),
                             ("wall_minutes", "wall time (min)", "return_vs_wall.png")):
        fig, ax = _axes((7, 4.2))
        for r in records:
            x, y, s = _mean_curve(r, key)
            ax.plot(x, y, "o-", ms=3, label=f"{r.model}+{r.consumer}")
            ax.fill_between(x, y - s, y + s, alpha=0.15)
        ax.set_xlabel(label)
        ax.set_ylabel("real return (greedy, mean over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        _save_figure(fig, root / name)


def plot_fidelity(records: list[PairRecord], path: Path) -> None:
    video = [r for r in records if r.fidelity]
    if not video:
        return
    fig, ax = _axes((7, 4.2))
    for r in video:
        y = r.fidelity["psnr_curve"]
        ax.plot(range(1, len(y) + 1), y, label=f"{r.model}+{r.consumer}")
    y = video[0].fidelity["copy_last_curve"]
    ax.plot(range(1, len(y) + 1), y, "k--", label="copy last frame")
    ax.set_xlabel("imagined step (open loop)")
    ax.set_ylabel("PSNR (dB), held-out episodes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_figure(fig, path)


def plot_error_vs_return(records: list[PairRecord], path: Path) -> None:
    with_snaps = [r for r in records if r.snapshots]
    if not with_snaps:
        return
    fig, ax = _axes((6, 4.2))
    for r in with_snaps:
        ax.plot([s["psnr"] for s in r.snapshots], [s["return_mean"] for s in r.snapshots], "o-", ms=4,
                label=f"{r.model}+{r.consumer}")
    ax.set_xlabel(f"PSNR at step {with_snaps[0].snapshots[0]['psnr_horizon']} (dB, held-out)")
    ax.set_ylabel("real return at that point")
    ax.set_title("does a better simulator act better? (one point per evaluation)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save_figure(fig, path)
