"""One pair's numbers: returns over seeds, cost, and (for pixel-decoding models) open-loop fidelity."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vidworld.compare.config import BudgetConfig, PairConfig
from vidworld.experiment import ExperimentConfig

HELDOUT_VAL_FRACTION = 0.9  # the held-out set's "val" split (no pair ever trains on any of it)


@dataclass
class PairRecord:
    """compare.json's record of one (model, consumer) pair.

    return_mean: mean over seeds of each seed's final evaluation mean (eval_episodes real episodes, greedy);
    return_std: std of the same final evaluation episodes pooled over seeds; seed_returns: each seed's mean.
    real_steps / wall_minutes: means over seeds of what each run used (wall time includes evaluation).
    imagined_transitions: mean over seeds of the imagined transitions the run spent learning and acting (the
    loop's count; None if the run did not record it). decisions_per_s: greedy acting in the final evaluation.
    curves: per seed, every evaluation {real_steps, wall_minutes, return_mean, return_std}.
    fidelity: PSNR/SSIM at the report horizons, controllability, imagined transitions/s (batch 64) of the
    first seed's final model on the held-out episodes; None for a model that renders no pixels.
    snapshots: per evaluation snapshot of the first seed's run (when kept): real_steps, return, PSNR at 15.
    """

    model: str
    consumer: str
    seeds: list[int]
    return_mean: float
    return_std: float
    seed_returns: list[float]
    real_steps: float
    wall_minutes: float
    imagined_transitions: float | None
    decisions_per_s: float | None
    curves: list[list[dict]]
    fidelity: dict | None = None
    snapshots: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _mean(xs: list) -> float | None:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(xs)) if xs else None


def pair_record(pair: PairConfig, exps: list[ExperimentConfig], summaries: list[dict], heldout: Path,
                prof: BudgetConfig, root: Path, progress: bool, window_context: int) -> PairRecord:
    finals = [s["evaluations"][-1] for s in summaries]
    pooled = [r for f in finals for r in f["returns"]]
    curves = [[{k: e[k] for k in ("real_steps", "wall_minutes", "return_mean", "return_std")} for e in s["evaluations"]]
              for s in summaries]
    record = PairRecord(
        model=pair.model, consumer=pair.consumer, seeds=[e.dream.seed for e in exps],
        return_mean=float(np.mean([f["return_mean"] for f in finals])), return_std=float(np.std(pooled)),
        seed_returns=[float(f["return_mean"]) for f in finals],
        real_steps=float(np.mean([s["real_steps"] for s in summaries])),
        wall_minutes=float(np.mean([s["wall_minutes"] for s in summaries])),
        imagined_transitions=_mean([s.get("imagined_transitions") for s in summaries]),
        decisions_per_s=_mean([f.get("decisions_per_s") for f in finals]), curves=curves)
    run = Path(exps[0].run_dir)
    record.fidelity = fidelity(run / "model", heldout, prof, root / "fidelity" / pair.name, progress, window_context)
    record.snapshots = snapshot_errors(run, summaries[0], heldout, prof, window_context, record.fidelity)
    return record


def _eval_cfg(prof: BudgetConfig, horizon: int | None = None, clips: int | None = None, ctrl: int | None = None):
    from vidworld.eval.config import EvalConfig

    f = prof.fidelity
    return EvalConfig(horizon=horizon or f.horizon, max_clips=clips or f.max_clips,
                      controllability_clips=f.controllability_clips if ctrl is None else ctrl)


def fidelity(model_dir: Path, heldout: Path, prof: BudgetConfig, out: Path, progress: bool,
             window_context: int) -> dict | None:
    """Open-loop fidelity of a pixel-decoding model on the held-out episodes (None for other models)."""
    from vidworld.eval.run import evaluate_world_model
    from vidworld.protocol import PixelDecoder
    from vidworld.world_models import load_world_model

    model = load_world_model(model_dir)
    if not isinstance(model, PixelDecoder):
        return None
    report = evaluate_world_model(model, str(heldout), _eval_cfg(prof), out, HELDOUT_VAL_FRACTION, 0,
                                  progress=progress, window_context=window_context)
    h = report.horizon
    at = [t for t in prof.fidelity.report_horizons if t <= h.horizon]
    return {"psnr": {str(t): h.model_psnr[t - 1] for t in at}, "ssim": {str(t): h.model_ssim[t - 1] for t in at},
            "copy_last_psnr": {str(t): h.copy_last_psnr[t - 1] for t in at},
            "clips_at": {str(t): h.n_valid[t - 1] for t in at},
            "psnr_curve": list(h.model_psnr), "copy_last_curve": list(h.copy_last_psnr),
            "controllability_db": report.controllability.mean if report.controllability else None,
            "termination_auroc": report.heads.imagined.termination_auroc,
            "imagined_transitions_per_s": report.speed.transitions_per_s if report.speed else None,
            "report": str(out)}


def snapshot_errors(run: Path, summary: dict, heldout: Path, prof: BudgetConfig, window_context: int,
                    final: dict | None = None) -> list[dict]:
    """Model error vs control return across a run: the world model saved at each evaluation
    (run/snapshots/real_<n>, when the loop kept them), PSNR at horizon 15 on min(64, max_clips) held-out clips
    beside the greedy return measured at that point. Empty when the run kept no snapshots or the model renders
    none. The last snapshot is the run's final model: when `final` (its `fidelity`) was scored on the same
    clips to the same horizon (the quick profile), its numbers are reused instead of scoring it twice. Each
    snapshot scored here keeps its curve in real_<n>/heldout_horizon.json."""
    from vidworld.eval.report import write_json
    from vidworld.eval.run import score_horizon
    from vidworld.protocol import PixelDecoder
    from vidworld.world_models import load_world_model

    folder = run / "snapshots"
    by_steps = {e["real_steps"]: e for e in summary["evaluations"]}
    out = []
    for snap in sorted(folder.glob("real_*"), key=lambda p: int(p.name[5:])) if folder.is_dir() else []:
        n = int(snap.name[5:])
        if n not in by_steps or not (snap / "world_model.json").is_file():
            continue
        h, clips = min(15, prof.fidelity.horizon), min(64, prof.fidelity.max_clips)
        same_clips = final is not None and (prof.fidelity.horizon, prof.fidelity.max_clips) == (h, clips)
        if same_clips and n == summary["real_steps"]:
            curve = final["psnr_curve"]
        else:
            model = load_world_model(snap)
            if not isinstance(model, PixelDecoder):
                return []
            # the horizon curve only: heads, speed, video and controllability are the final model's business
            scored = score_horizon(model, str(heldout), _eval_cfg(prof, horizon=h, clips=clips, ctrl=0),
                                   HELDOUT_VAL_FRACTION, 0, window_context=window_context)
            write_json(scored, snap / "heldout_horizon.json")
            curve = list(scored.model_psnr)
        out.append({"real_steps": n, "return_mean": by_steps[n]["return_mean"], "psnr_horizon": h,
                    "psnr": curve[h - 1], "mean_psnr": float(np.nanmean(curve))})
    return out
