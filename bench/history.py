"""Does the transformer history encoder pay for itself? K-frame stack vs stack + history, same data and seeds.

    python bench/history.py                                  # trains both on the demo's data if needed
    python bench/history.py --stack-model runs/demo/model    # reuse the demo's model as the stack variant

For each variant: train `configs/demo.yaml` (+ `diffusion.history.enabled=true` for "history") into
runs/bench_history/<variant> (resumes an interrupted run), then the demo's evaluation (PSNR/SSIM vs horizon on
held-out clips, termination AUROC, controllability) and planner (real CartPole-v1 episodes), and the cost
(training samples/s, imagined transitions/s while planning). Prints a markdown table and writes
runs/bench_history/history.md and .json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vidworld.atomic import atomic_write_text
from vidworld.eval.run import evaluate_world_model
from vidworld.experiment import load_experiment
from vidworld.planning.run import evaluate_planning
from vidworld.train.run import train_world_model
from vidworld.world_models import load_world_model

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"stack": [], "history": ["diffusion.history.enabled=true"]}


def run_variant(name: str, out: Path, model_dir: str | None, overrides: list[str]) -> dict:
    cfg = load_experiment(ROOT / "configs" / "demo.yaml", [f"run_dir={out / name}", *VARIANTS[name], *overrides])
    summary: dict = {}
    if model_dir is None:
        trained = train_world_model(cfg, resume=True)
        model_dir, summary = str(trained.model_dir), trained.summary
    model = load_world_model(model_dir)
    report = evaluate_world_model(model, cfg.data.path, cfg.eval, out / name / "eval", cfg.data.val_fraction,
                                  cfg.data.split_seed)
    plan = evaluate_planning(model, cfg.plan, out / name / "plan")
    h = report.horizon
    return {
        "model": model_dir,
        "psnr": {str(t): h.model_psnr[t - 1] for t in (1, 5, h.horizon)},
        "ssim": {str(t): h.model_ssim[t - 1] for t in (1, 5, h.horizon)},
        "copy_last_psnr": {str(t): h.copy_last_psnr[t - 1] for t in (1, 5, h.horizon)},
        "termination_auroc": report.heads.imagined.termination_auroc,
        "controllability_db": report.controllability.mean if report.controllability else None,
        "planner_return": plan.planned.mean, "planner_return_std": plan.planned.std,
        "random_return": plan.random.mean, "planner_returns": list(plan.planned.returns),
        "ms_per_action": plan.seconds_per_action * 1000,
        "imagined_transitions_per_s": plan.imagined_transitions_per_s,
        "train_samples_per_s": summary.get("dynamics_train_samples_per_s"),
        "dynamics_minutes": summary.get("dynamics_minutes"),
    }


def table(results: dict[str, dict]) -> str:
    H = max(int(k) for k in next(iter(results.values()))["psnr"])
    lines = [f"| variant | PSNR 1 / 5 / {H} (dB) | SSIM {H} | term. AUROC | controllability (dB) | planner return "
             "(5 ep.) | ms/action | imagined trans./s | train samples/s |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        p = r["psnr"]
        ctrl = f"{r['controllability_db']:.2f}" if r["controllability_db"] is not None else "-"
        rate = f"{r['train_samples_per_s']:.0f}" if r["train_samples_per_s"] else "-"
        lines.append(f"| {name} | {p['1']:.2f} / {p['5']:.2f} / {p[str(H)]:.2f} | {r['ssim'][str(H)]:.3f} | "
                     f"{r['termination_auroc']:.3f} | {ctrl} | {r['planner_return']:.1f} ± {r['planner_return_std']:.1f}"
                     f" | {r['ms_per_action']:.0f} | {r['imagined_transitions_per_s']:.0f} | {rate} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench_history")
    p.add_argument("--stack-model", default=None, help="reuse a trained demo model as the 'stack' variant")
    p.add_argument("--only", choices=sorted(VARIANTS), default=None)
    p.add_argument("overrides", nargs="*", help="key=value overrides for both variants")
    args = p.parse_args()
    out = Path(args.out)
    results = {}
    for name in VARIANTS:
        if args.only and name != args.only:
            continue
        results[name] = run_variant(name, out, args.stack_model if name == "stack" else None, args.overrides)
    text = table(results)
    print(text)
    atomic_write_text(out / "history.md", text + "\n")
    atomic_write_text(out / "history.json", json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
