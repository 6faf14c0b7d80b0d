"""`vidworld demo`: from nothing to planning in generated video, on CartPole-v1 pixels.

1. collect random-policy episodes from the real env (skipped when the dataset already has enough steps);
2. train the latent diffusion world model (VAE, then denoiser + heads), resuming if interrupted;
3. evaluate it on held-out episodes (PSNR/SSIM vs horizon, head AUROC, controllability, video, plot);
4. plan with CEM inside the learned simulator while acting in the real env, against a random policy.
Everything lands in one run folder, listed at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from vidworld.atomic import atomic_write_text
from vidworld.data.collect import collect
from vidworld.data.store import EpisodeStore
from vidworld.eval.report import plot_training_curves
from vidworld.eval.run import evaluate_world_model, format_report
from vidworld.experiment import ExperimentConfig, load_experiment
from vidworld.planning.run import evaluate_planning
from vidworld.train.run import train_world_model

DEFAULT_CONFIG = "configs/demo.yaml"


def _collected_steps(path: Path, env_id: str, frame_size: int) -> int:
    """Steps already collected at `path` for this env and frame size (0 if nothing is there); a dataset of
    another env or size is refused before any training (it would train on the wrong data)."""
    try:
        store = EpisodeStore.open(path)
    except (ValueError, FileNotFoundError):
        return 0
    if store.env_id != env_id or store.frame_shape != (frame_size, frame_size):
        h, w = store.frame_shape
        raise ValueError(f"data.path {path} holds {store.env_id} episodes at {h}x{w}, but collect.env is {env_id} at "
                         f"{frame_size}x{frame_size}; use another data.path")
    return sum(e.length for e in store.episodes)


def run_demo(cfg: ExperimentConfig, progress: bool = True) -> dict:
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t0 = time.perf_counter()

    # 1. data
    data = Path(cfg.data.path)
    have = _collected_steps(data, cfg.collect.env.id, cfg.collect.env.frame_size)
    if have < cfg.collect.steps:
        res = collect(replace(cfg.collect, out=str(data), steps=cfg.collect.steps - have), progress=progress)
        print(f"[demo] collected {res.steps} steps in {res.episodes} episodes ({res.frames_per_s:.0f} frames/s)")
    else:
        print(f"[demo] reusing {have} collected steps in {data}")
    times["collect_min"] = (time.perf_counter() - t0) / 60

    # 2. train (resumes from checkpoints if a previous demo was interrupted)
    t1 = time.perf_counter()
    trained = train_world_model(cfg, resume=True, progress=progress)
    times["train_min"] = (time.perf_counter() - t1) / 60
    rows = []
    for stage in ("stage_vae", "stage_dynamics"):
        log = run / stage / "log.jsonl"
        if log.is_file():
            rows += [json.loads(x) for x in log.read_text().splitlines()]
    if rows:
        plot_training_curves(rows, run / "training_curves.png")

    # 3. evaluate
    t2 = time.perf_counter()
    report = evaluate_world_model(
        trained.model, str(data), cfg.eval, run / "eval", cfg.data.val_fraction, cfg.data.split_seed,
        env_cfg=cfg.collect.env, progress=progress,
    )
    times["eval_min"] = (time.perf_counter() - t2) / 60
    print(format_report(report))

    # 4. plan in the real env
    t3 = time.perf_counter()
    plan = evaluate_planning(trained.model, cfg.plan, run / "plan", progress=progress)
    times["plan_min"] = (time.perf_counter() - t3) / 60
    times["total_min"] = (time.perf_counter() - t0) / 60

    h = report.horizon
    result = {
        "vae_psnr_db": trained.summary["vae_val_psnr_db"],
        "rollout_psnr_db": {"1": h.model_psnr[0], str(h.horizon): h.model_psnr[-1]},
        "copy_last_psnr_db": {"1": h.copy_last_psnr[0], str(h.horizon): h.copy_last_psnr[-1]},
        "beats_copy_last_at_every_step": report.summary()["model_beats_copy_last_at_every_step"],
        "termination_auroc": report.heads.imagined.termination_auroc,
        "controllability_db": report.controllability.mean if report.controllability else None,
        "random_return": plan.random.mean,
        "planner_return": plan.planned.mean,
        "planner_return_std": plan.planned.std,
        "train_samples_per_s": trained.summary["dynamics_train_samples_per_s"],
        "minutes": times,
    }
    atomic_write_text(run / "demo_summary.json", json.dumps(result, indent=2))
    print()
    print(plan.table())
    print(f"\n[demo] done in {times['total_min']:.1f} min. Outputs in {run}/:")
    for p in sorted(run.rglob("*")):
        if p.is_file() and "checkpoints" not in p.parts and "tb" not in p.parts and p.parent.name not in (
            "vae", "denoiser", "heads"
        ):
            print(f"  {p.relative_to(run)}")
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"experiment YAML (default {DEFAULT_CONFIG})")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. train.dynamics_steps=1000")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    path: str | Path | None = args.config
    if args.config == DEFAULT_CONFIG and not Path(args.config).is_file():
        in_repo = Path(__file__).resolve().parents[1] / DEFAULT_CONFIG  # editable install, run elsewhere
        path = in_repo if in_repo.is_file() else None
        if path is None:
            print(f"[demo] {DEFAULT_CONFIG} not found; using the built-in defaults (the same values)")
    cfg = load_experiment(path, args.overrides)
    run_demo(cfg, progress=not args.no_progress)
    return 0
