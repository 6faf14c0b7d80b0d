"""Fidelity experiments beyond CartPole (issue 14): train a setting, score it at horizon 50, add a table row.

    python bench/fidelity.py configs/breakout.yaml --heldout data/breakout_heldout --name base
    python bench/fidelity.py configs/breakout.yaml --heldout data/breakout_heldout --name latent16 \\
        diffusion.vae.block_out_channels=[16,32,64]  diffusion.vae.blocks_per_level=[0,1,1]
    python bench/fidelity.py configs/breakout.yaml --table          # print the table of every row so far
    python bench/fidelity.py configs/pong.yaml --heldout H --name long --vae-from base train.dynamics_steps=11500
    python bench/fidelity.py configs/pong.yaml --heldout H --name base --context-noise 0.05   # score only

Each experiment trains `config` + overrides into runs/fidelity/<config stem>/<name> (an interrupted run
resumes: same command), then evaluates the model on a separately collected held-out set (`--heldout`, 90% of
its episodes scored) with `vidworld eval-wm`'s evaluation at horizon 50: whole-frame PSNR/SSIM vs copy-last,
moving-region PSNR (pixels that changed since the previous real frame) vs copy-last and the VAE's ceiling,
controllability, imagined transitions/s at batch 64 (latent only). The row (setting, numbers, train minutes
from the run's own `train_summary.json`) is stored in runs/fidelity/<stem>/results.json under `name` and
the whole table is rewritten to runs/fidelity/<stem>/results.md. Timings: run one experiment at a time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path

import yaml

from vidworld.atomic import atomic_write_text
from vidworld.config import to_dict
from vidworld.eval.run import evaluate_world_model
from vidworld.experiment import load_experiment
from vidworld.precision import PRECISIONS, resolve_precision
from vidworld.train.run import flat_config, train_world_model
from vidworld.world_models import load_world_model

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "fidelity"  # one folder per config stem, one run folder per row
STEPS = (1, 5, 15, 50)


def _at(values: list[float] | None, steps=STEPS) -> list[float | None]:
    values = values or []
    return [values[t - 1] if t <= len(values) and values[t - 1] == values[t - 1] else None for t in steps]


def _beats(model: list[float] | None, base: list[float] | None) -> bool:
    pairs = [(m, b) for m, b in zip(model or [], base or []) if m == m and b == b]
    return bool(pairs) and all(m > b for m, b in pairs)


def variant_suffix(sampler_steps: int | None, precision: str, context_noise: float | None = None) -> str:
    """Row/eval-folder suffix of a scoring variant of a trained model ("" for the model as trained, fp32)."""
    return (f"@sampler{sampler_steps}" if sampler_steps is not None else "") + \
        (f"@ctxnoise{context_noise:g}" if context_noise is not None else "") + \
        (f"@{precision}" if precision != "fp32" else "")


# Settings that only the dynamics stage (denoiser, heads, sampler, ...) reads: a run that differs from another
# only in these can start from that run's finished VAE (`--vae-from`). Everything else must match.
DYNAMICS_ONLY = ("run_dir", "diffusion.denoiser.", "diffusion.heads.", "diffusion.value.", "diffusion.sampler.",
                 "diffusion.history.", "diffusion.static_gate.", "model.context_length", "train.dynamics_",
                 "train.num_threads", "train.tensorboard", "train.log_every", "train.checkpoint_every",
                 "train.keep_checkpoints", "eval.", "plan.", "agent.", "dream.", "rssm.", "muzero.", "compare.")


def share_vae(cfg, src: Path, out: Path) -> None:
    """Start run `out` from run `src`'s finished VAE stage (copied, so `src` stays as it was): a sweep over
    dynamics settings need not retrain the same VAE. Refuses unless every VAE-relevant setting matches; the
    VAE's training minutes come along in its stage timing, so the new row's train minutes still include them."""
    if not (src / "vae").is_dir() or not (src / "config.yaml").is_file():
        raise SystemExit(f"--vae-from {src}: no finished VAE there (expected {src}/vae and {src}/config.yaml)")
    old, new = flat_config(yaml.safe_load((src / "config.yaml").read_text())), flat_config(to_dict(cfg))
    diff = [k for k in sorted(set(old) | set(new)) if not k.startswith(DYNAMICS_ONLY) and old.get(k) != new.get(k)]
    if diff:
        raise SystemExit(f"--vae-from {src}: its VAE was trained with other settings "
                         f"({', '.join(f'{k}: {old.get(k)!r} vs {new.get(k)!r}' for k in diff[:4])})")
    out.mkdir(parents=True)
    for part in ("vae", "stage_vae"):
        shutil.copytree(src / part, out / part)


def run_experiment(config: Path, name: str, heldout: str, overrides: list[str], horizon: int,
                   sampler_steps: int | None = None, precision: str = "fp32",
                   context_noise: float | None = None, vae_from: str | None = None) -> dict:
    out = RUNS / config.stem / name
    cfg = load_experiment(config, [f"run_dir={out}", *overrides])
    resume = (out / "config.yaml").exists()
    if vae_from and not resume and not out.exists():
        share_vae(cfg, RUNS / config.stem / vae_from, out)
    trained = train_world_model(cfg, resume=resume or bool(vae_from))
    summary = trained.summary
    loaded = {} if sampler_steps is None else {"sampler_steps": sampler_steps}
    model = load_world_model(str(trained.model_dir), **loaded)
    if context_noise is not None:  # the sampler as saved (and as loaded above), with only sigma_ctx changed
        sampler = dataclasses.replace(model.sampler_config, context_noise=context_noise)
        model = load_world_model(str(trained.model_dir), sampler=sampler)
    suffix = variant_suffix(sampler_steps, precision, context_noise)
    eval_dir = out / ("eval" + suffix.replace("@", "_"))
    scoring = dataclasses.replace(cfg.eval, horizon=horizon, precision=precision)
    report = evaluate_world_model(model, heldout, scoring, eval_dir, val_fraction=0.9, split_seed=cfg.data.split_seed)
    h = report.horizon
    scored = ([f"sampler_steps={sampler_steps}"] if sampler_steps is not None else []) + \
        ([f"sampler.context_noise={context_noise:g}"] if context_noise is not None else []) + \
        ([f"precision={precision}"] if precision != "fp32" else [])
    return {
        "overrides": overrides + ([f"(scored with {' '.join(scored)})"] if scored else []),
        "horizon": h.horizon,
        "n_clips": h.n_clips,
        "psnr": {"model": _at(h.model_psnr), "copy_last": _at(h.copy_last_psnr)},
        "ssim": {"model": _at(h.model_ssim), "copy_last": _at(h.copy_last_ssim)},
        "moving_psnr": {"model": _at(h.model_moving_psnr), "copy_last": _at(h.copy_last_moving_psnr),
                        "vae_ceiling": _at(h.vae_moving_psnr)},
        "moving_pixel_fraction": h.moving_fraction,
        # the target: beat copy-last at EVERY step 1..H on all three
        "beats_copy_last": {"psnr": _beats(h.model_psnr, h.copy_last_psnr),
                            "ssim": _beats(h.model_ssim, h.copy_last_ssim),
                            "moving_psnr": _beats(h.model_moving_psnr, h.copy_last_moving_psnr)},
        "first_step_lost": {k: next((t + 1 for t, (m, b) in enumerate(zip(mv or [], bv or [])) if m == m and b == b and m <= b),
                                    None)
                            for k, mv, bv in (("psnr", h.model_psnr, h.copy_last_psnr),
                                              ("ssim", h.model_ssim, h.copy_last_ssim),
                                              ("moving_psnr", h.model_moving_psnr, h.copy_last_moving_psnr))},
        "vae_val_psnr_db": summary.get("vae_val_psnr_db"),
        "controllability_db": report.controllability.mean if report.controllability else None,
        "imagined_transitions_per_s": report.speed.transitions_per_s if report.speed else None,
        "train_minutes": (summary.get("vae_minutes") or 0.0) + (summary.get("dynamics_minutes") or 0.0),
        "model": str(trained.model_dir),
    }


def _f(x, nd=1) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def table(results: dict[str, dict]) -> str:
    head = ("| setting | PSNR model / copy @1, 5, 15, 50 (dB) | SSIM model / copy (last step) | moving PSNR model / copy / "
            "VAE @1, 5, 15, 50 (dB) | beats copy at every step (PSNR, SSIM, moving) | controllability (dB) | "
            "imagined trans./s (b64) | train min |")
    lines = [head, "|" + "---|" * 8]
    for name, r in results.items():
        p, s, m = r["psnr"], r["ssim"], r["moving_psnr"]
        last = max((i for i, v in enumerate(s["model"]) if v is not None), default=-1)  # SSIM at min(50, H)
        whole = ", ".join(f"{_f(a)}/{_f(b)}" for a, b in zip(p["model"], p["copy_last"]))
        moving = ", ".join(f"{_f(a)}/{_f(b)}/{_f(c)}" for a, b, c in zip(m["model"], m["copy_last"],
                                                                           m["vae_ceiling"]))
        beats = ", ".join(("yes" if r["beats_copy_last"][k] else f"no (from {r['first_step_lost'][k]})")
                          for k in ("psnr", "ssim", "moving_psnr"))
        lines.append(f"| {name}: {' '.join(r['overrides']) or '(config as is)'} | {whole} | "
                     f"{_f(s['model'][last], 3)}/{_f(s['copy_last'][last], 3)} @{STEPS[last]} | {moving} | {beats} | "
                     f"{_f(r['controllability_db'], 2)} | {_f(r['imagined_transitions_per_s'], 0)} | "
                     f"{_f(r['train_minutes'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", type=Path)
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides of the config (the setting tried)")
    p.add_argument("--name", help="row name (and run folder) of this experiment")
    p.add_argument("--heldout", help="separately collected dataset of the same env to score on")
    p.add_argument("--horizon", type=int, default=50)
    p.add_argument("--sampler-steps", type=int, help="score the trained model with this many sampler steps "
                   "(a load-time override; row `<name>@sampler<N>`, scores in <run>/eval_sampler<N>)")
    p.add_argument("--vae-from", help="start from the finished VAE of the run with this --name (same config "
                   "stem; every VAE-relevant setting must match); its training minutes still count")
    p.add_argument("--context-noise", type=float, help="score the trained model with this sigma_ctx on its "
                   "context at inference (sampler.context_noise, a load-time override; row `<name>@ctxnoise<x>`)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="score (and time) the trained model in this arithmetic, as the planners run it "
                        "(row `<name>@bf16`)")
    p.add_argument("--table", action="store_true", help="only print the table of the rows stored so far")
    args = p.parse_intermixed_args(argv)
    folder = RUNS / args.config.stem
    store = folder / "results.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    if not args.table:
        if not args.name or not args.heldout:
            p.error("--name and --heldout are required to run an experiment")
        if not Path(args.heldout, "manifest.json").is_file():
            p.error(f"--heldout {args.heldout}: not a dataset folder (no manifest.json); collect one with "
                    f"`vidworld collect --env <id> --seed 1000 --out {args.heldout}`")
        if args.sampler_steps is not None and args.sampler_steps < 1:
            p.error(f"--sampler-steps must be >= 1, got {args.sampler_steps}")
        if args.context_noise is not None and not args.context_noise >= 0:
            p.error(f"--context-noise must be >= 0, got {args.context_noise}")
        precision = resolve_precision(args.precision, "cpu")  # "auto" -> what it means here, for the row name
        row = args.name + variant_suffix(args.sampler_steps, precision, args.context_noise)
        results[row] = run_experiment(args.config, args.name, args.heldout, args.overrides, args.horizon,
                                      args.sampler_steps, precision, args.context_noise, args.vae_from)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(store, json.dumps(results, indent=2))
        atomic_write_text(folder / "results.md", table(results) + "\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
