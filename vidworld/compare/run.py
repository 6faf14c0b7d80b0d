"""`vidworld compare CONFIG [--quick] [--overwrite]`: every (world model, consumer) pair, one real budget.

For each pair of the config and each seed of the profile (`full`, or `quick` with --quick), one `vidworld
dream` run (the online loop: collect real steps with the pair's consumer, train the world model, learn in
imagination, evaluate greedily in the real env every `eval_every` real steps with the shared harness) under
<run_dir>/<profile>/<model>+<consumer>/seed<k>. A run that exists is continued (`--resume` semantics: a
finished one is reused, a killed one resumes from its checkpoints, one whose saved config differs is refused
with the key that differs; `--overwrite` starts every pair over). Then, for every pair, the final evaluation
of each seed and the cost (wall minutes, imagined transitions spent, acting decisions/s), and for the models
that render pixels the open-loop fidelity on held-out episodes that no pair trained on (PSNR/SSIM vs horizon,
controllability, imagined transitions/s: `vidworld.eval.compare`, the same clips for every model).

Outputs in <run_dir>/<profile>/: compare.md (the table), compare.json (one record per pair: model, consumer,
return_mean, return_std, real_steps, wall_minutes, ...), return_vs_real_steps.png, return_vs_wall.png,
fidelity/ (psnr_vs_horizon.png and every model's report) and error_vs_return.png (model error vs control
return across the evaluation snapshots of each run, when the runs kept them). Rewritten after every pair, so
a killed comparison shows what it has; rerun the same command to continue it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tqdm.auto import tqdm

from vidworld.compare.config import CONSUMERS, BudgetConfig, CompareConfig, PairConfig
from vidworld.compare.records import PairRecord, pair_record
from vidworld.compare.report import write_report
from vidworld.config import load_config
from vidworld.experiment import ExperimentConfig, load_experiment
from vidworld.paths import check_input_file, check_output_dir

EVAL_SEED = 100_000  # every pair's evaluation episodes use env seeds 100000, 100001, ...


def profile_dir(cfg: CompareConfig, quick: bool) -> Path:
    return Path(cfg.run_dir) / ("quick" if quick else "full")


def pair_experiment(cfg: CompareConfig, prof: BudgetConfig, pair: PairConfig, seed: int, root: Path,
                    index: int) -> ExperimentConfig:
    """The pair's dream config with the comparison's budget, seed, evaluation protocol and run folder."""
    path = check_input_file(pair.config, f"pairs[{index}].config")
    # the consumer's own settings come last: a profile's `dream.agent_updates=40` must not make a planner pair
    # train an actor it never acts with
    overrides = [*pair.overrides, *prof.overrides, *prof.model_overrides.get(pair.model, []), *CONSUMERS[pair.consumer],
                 f"run_dir={root / pair.name / f'seed{seed}'}", f"dream.seed={seed}",
                 f"dream.real_steps={prof.real_steps}", f"dream.eval_every={prof.eval_every}",
                 f"dream.eval_episodes={prof.eval_episodes}", f"dream.eval_seed={EVAL_SEED}",
                 "dream.snapshots=true"]  # the world model of every evaluation: error vs return
    exp = load_experiment(path, overrides)
    if exp.model.kind != pair.model:
        raise ValueError(f"pairs[{index}] ({pair.name}): {pair.config} trains model.kind {exp.model.kind!r}, "
                         f"not {pair.model!r}")
    env = exp.collect.env
    if (env.id, env.frame_size) != (cfg.env_id, cfg.frame_size):
        raise ValueError(f"pairs[{index}] ({pair.name}): {pair.config} runs {env.id} at {env.frame_size}px; this "
                         f"comparison is on {cfg.env_id} at {cfg.frame_size}px")
    return exp


def heldout_episodes(cfg: CompareConfig, prof: BudgetConfig, root: Path, progress: bool) -> Path:
    """Random-policy episodes for the fidelity evaluation, collected once (a seed no pair uses)."""
    from vidworld.data.collect import CollectConfig, collect
    from vidworld.data.store import EpisodeStore
    from vidworld.envs.pixels import PixelEnvConfig

    out = root / "heldout"
    f = prof.fidelity
    have = 0
    if (out / "manifest.json").is_file():
        store = EpisodeStore.open(out)
        have = sum(e.length for e in store.episodes)
    if have < f.heldout_steps:
        collect(CollectConfig(env=PixelEnvConfig(id=cfg.env_id, frame_size=cfg.frame_size),
                              steps=f.heldout_steps - have, seed=f.heldout_seed, out=str(out)), progress=progress)
    return out


def run_compare(cfg: CompareConfig, quick: bool = False, overwrite: bool = False, progress: bool = True) -> list[dict]:
    from vidworld.rl.online import run_dream

    prof = cfg.quick if quick else cfg.full
    root = check_output_dir(profile_dir(cfg, quick), "run_dir")
    # every pair's config is checked before the first hour of training
    plans = [(pair, [pair_experiment(cfg, prof, pair, s, root, i) for s in prof.seeds])
             for i, pair in enumerate(cfg.pairs)]
    root.mkdir(parents=True, exist_ok=True)
    heldout = heldout_episodes(cfg, prof, root, progress)
    window = max(e.model.context_length for _, exps in plans for e in exps)  # the same clips for every model
    records: list[PairRecord] = []
    started = time.perf_counter()
    for pair, exps in tqdm(plans, desc="compare pairs", disable=not progress):
        summaries = []
        for exp in exps:
            summaries.append(run_dream(exp, resume=not overwrite, overwrite=overwrite, progress=progress))
        records.append(pair_record(pair, exps, summaries, heldout, prof, root, progress, window))
        write_report(records, prof, root, cfg, minutes=(time.perf_counter() - started) / 60)
    return [r.as_dict() for r in records]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="comparison YAML, e.g. configs/compare_cartpole.yaml")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. full.seeds=[0,1]")
    p.add_argument("--quick", action="store_true", help="the config's quick profile (a smoke comparison)")
    p.add_argument("--overwrite", action="store_true", help="start every pair's runs over")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(CompareConfig, args.config, args.overrides)
    records = run_compare(cfg, quick=args.quick, overwrite=args.overwrite, progress=not args.no_progress)
    root = profile_dir(cfg, args.quick)
    print((root / "compare.md").read_text())
    print(json.dumps([{k: r[k] for k in ("model", "consumer", "return_mean", "return_std", "real_steps")}
                      for r in records]))
    print(f"outputs in {root}")
    return 0

