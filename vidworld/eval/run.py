"""`vidworld eval-wm --model DIR`: score a world model on held-out episodes; write table, plot, video, json.

Outputs (in --out, default DIR/../eval):
  horizon.md / horizon.json     PSNR and SSIM at imagined steps 1..H vs copy-last-frame and the VAE ceiling
  psnr_vs_horizon.png           the same as a plot
  rollouts.mp4 / rollouts.gif   ground truth (left) and imagination (right) under the real actions
  summary.json                  everything above + head AUROC + controllability
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from vidworld.config import MAX_SEED
from vidworld.data.dataset import SegmentDataset
from vidworld.data.store import EpisodeStore
from vidworld.envs.pixels import PixelEnvConfig
from vidworld.eval.config import EvalConfig
from vidworld.eval.controllability import ControllabilityResult, controllability
from vidworld.eval.horizon import (
    HeadsResult,
    HorizonResult,
    evaluate_heads,
    evaluate_horizon,
    open_loop_rollout,
)
from vidworld.eval.speed import ImaginationSpeed, imagination_speed
from vidworld.eval.replay import StateReplay, supports_replay
from vidworld.eval.report import horizon_table, plot_psnr_vs_horizon, side_by_side_video, write_json
from vidworld.paths import check_input_dir, check_output_dir
from vidworld.protocol import WorldModel
from vidworld.world_models.compat import check_dataset


@dataclass(frozen=True)
class EvalReport:
    horizon: HorizonResult
    heads: HeadsResult
    controllability: ControllabilityResult | None
    out_dir: Path
    speed: ImaginationSpeed | None = None

    def summary(self) -> dict:
        h = self.horizon
        above = [m > c for m, c in zip(h.model_psnr, h.copy_last_psnr)]
        return {
            "horizon": asdict(h),
            "model_beats_copy_last_at_every_step": all(above),
            "heads": asdict(self.heads),
            "controllability": asdict(self.controllability) if self.controllability else None,
            "imagination": asdict(self.speed) if self.speed else None,
        }


def _spread(n_total: int, n: int) -> list[int]:
    """n indices spread evenly over range(n_total) (different episodes, not n windows of one)."""
    if n_total <= n:
        return list(range(n_total))
    return np.linspace(0, n_total - 1, n).round().astype(int).tolist()


def _collate(items: list[dict]) -> dict:
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in ("frames", "actions", "rewards",
                                                                                 "terminated", "truncated")}


def newest_context(batch: dict, offset: int) -> dict:
    """Drop the first `offset` frames (and their actions) of every clip: a window cut for a longer context,
    seen by a model with a shorter one. frames [B, L, ...] -> [B, L - offset, ...]; per-transition keys too."""
    if offset == 0:
        return batch
    return {k: v[:, offset:] for k, v in batch.items()}


def evaluate_world_model(
    model: WorldModel,
    data_path: str,
    cfg: EvalConfig,
    out_dir: Path,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    env_cfg: PixelEnvConfig | None = None,
    progress: bool = True,
    window_context: int | None = None,
) -> EvalReport:
    """Horizon metrics, head AUROC, controllability (when the env can be replayed), imagination speed, pictures.

    window_context: cut held-out windows with this many context frames (>= the model's K; the model sees the
    newest K of them). Several models evaluated with the same window_context and seed score the very same
    clips and targets even when their K differ (`vidworld.eval.compare`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    K, H = model.context_length, cfg.horizon
    W = window_context or K
    if W < K:
        raise ValueError(f"window_context {W} is shorter than the model's context_length {K}")
    g = torch.Generator(device=model.device).manual_seed(cfg.seed)
    clips = SegmentDataset(data_path, W, H, split="val", val_fraction=val_fraction, split_seed=split_seed)
    check_dataset(model, clips.store)
    data_env = clips.store.manifest.get("env_id")
    if env_cfg is not None and data_env and env_cfg.id != data_env:  # the demo passes its collect.env
        raise ValueError(f"dataset {data_path} holds {data_env} episodes, but the real env given to replay them "
                         f"is {env_cfg.id}")
    if len(clips) == 0:
        raise ValueError(f"{data_path}: no held-out window of {W + H} frames; collect longer/more episodes")
    collate = _collate if W == K else (lambda items: newest_context(_collate(items), W - K))
    subset = Subset(clips, _spread(len(clips), cfg.max_clips))
    loader = DataLoader(subset, batch_size=cfg.batch_size, collate_fn=collate)
    horizon = evaluate_horizon(model, tqdm(loader, desc="eval horizon", disable=not progress), K, H, generator=g)

    # Heads: every transition of the val split (terminal ones are rare; see evaluate_heads).
    windows = SegmentDataset(data_path, W, 1, split="val", val_fraction=val_fraction, split_seed=split_seed)
    wl = DataLoader(windows, batch_size=256, collate_fn=collate)
    heads = evaluate_heads(model, tqdm(wl, desc="eval heads", disable=not progress), K, generator=g)
    speed = imagination_speed(model, next(iter(loader)))

    # Side-by-side video of a few clips.
    batch = collate([clips[i] for i in _spread(len(clips), cfg.video_clips)])
    imagined = open_loop_rollout(model, batch["frames"], batch["actions"], K, H, generator=g)
    gt = batch["frames"][:, K : K + H]
    for suffix in (".mp4", ".gif"):
        side_by_side_video(gt, imagined, out_dir / f"rollouts{suffix}", fps=int(clips.store.manifest.get("fps", 10)))

    ctrl = None
    env_id = clips.store.manifest.get("env_id", "")
    if supports_replay(env_id) and cfg.controllability_clips > 0:
        ctrl = _controllability(model, clips, cfg, env_cfg or PixelEnvConfig(id=env_id, frame_size=model.frame_size), g,
                                W - K)

    report = EvalReport(horizon, heads, ctrl, out_dir, speed)
    (out_dir / "horizon.md").write_text(horizon_table(horizon) + "\n")
    write_json(horizon, out_dir / "horizon.json")
    plot_psnr_vs_horizon(horizon, out_dir / "psnr_vs_horizon.png", title=f"{env_id}: open-loop PSNR vs horizon")
    write_json(report.summary(), out_dir / "summary.json")
    return report


def _controllability(model, clips: SegmentDataset, cfg: EvalConfig, env_cfg: PixelEnvConfig, g,
                     offset: int = 0) -> ControllabilityResult:
    """Same context, two action sequences (the real ones, and each id shifted by n//2 modulo n: another action
    at every step; for CartPole's two actions, left <-> right), real futures of both by replaying the env from
    the recorded state of the last context frame."""
    K, H = model.context_length, cfg.horizon
    idx = _spread(len(clips), cfg.controllability_clips)
    batch = newest_context(_collate([clips[i] for i in idx]), offset)
    states = []
    for i in idx:
        ep, start = clips.window(i)
        st = clips.store.arrays(ep).state
        if st is None:
            raise ValueError(f"{clips.store.root}: episode {ep} has no recorded state; cannot replay")
        states.append(torch.as_tensor(st[start + offset + K - 1]))
    states = torch.stack(states)
    acts_a = batch["actions"][:, K - 1 : K - 1 + H]
    replay = StateReplay(env_cfg)
    n = replay.num_actions  # the real env's: a model may take more actions than the env has (check_dataset)
    acts_b = (acts_a + n // 2) % n
    gt_a, gt_b = replay(states, acts_a), replay(states, acts_b)
    replay.close()
    return controllability(model, batch["frames"][:, :K], batch["actions"][:, : K - 1], acts_a, acts_b, gt_a, gt_b, g)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, action="append",
                   help="world model folder (from `vidworld train`); repeat to compare several on one table/chart")
    p.add_argument("--data", default=None, help="dataset folder (default: the one the model was trained on)")
    p.add_argument("--out", default=None, help="output folder (default: <model>/../eval)")
    p.add_argument("--horizon", type=int, default=EvalConfig.horizon)
    p.add_argument("--max-clips", type=int, default=EvalConfig.max_clips)
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from vidworld.world_models import load_world_model

    if args.horizon < 1:
        raise ValueError(f"--horizon must be >= 1, got {args.horizon}")
    if args.max_clips < 1:
        raise ValueError(f"--max-clips must be >= 1, got {args.max_clips}")
    if not 0 <= args.seed < MAX_SEED:
        raise ValueError(f"--seed must be in [0, {MAX_SEED}), got {args.seed}")
    paths = list(args.model)
    for path in paths:
        check_input_dir(path, "--model")
    default_out = Path(paths[0]).parent / ("eval" if len(paths) == 1 else "eval_compare")
    out = check_output_dir(args.out if args.out else default_out, "--out")
    models = [load_world_model(path) for path in paths]
    first = models[0]
    data = args.data or first.meta.get("dataset")
    if not data:
        raise ValueError(f"{paths[0]}: the model does not record its dataset; pass --data")
    cfg = EvalConfig(horizon=args.horizon, max_clips=args.max_clips, seed=args.seed)
    if len(models) > 1:  # every model against the data before any is evaluated (each takes minutes)
        store = EpisodeStore.open(data, skip_corrupt=True)
        for path, m in zip(paths, models):
            check_dataset(m, store, what=f"dataset (for --model {path})")
    # the held-out split of the first model; the others are scored on the same episodes
    val_fraction, split_seed = first.meta.get("val_fraction", 0.1), first.meta.get("split_seed", 0)
    for path, m in zip(paths[1:], models[1:]):
        if (m.meta.get("val_fraction", 0.1), m.meta.get("split_seed", 0)) != (val_fraction, split_seed):
            warnings.warn(f"{path} was trained with another train/val split than {paths[0]}: its held-out "
                          "score may include episodes it trained on", stacklevel=1)
    if len(models) == 1:
        report = evaluate_world_model(first, data, cfg, out, val_fraction, split_seed)
        print(format_report(report))
    else:
        from vidworld.eval.compare import compare_table, evaluate_models, model_names

        reports = evaluate_models(dict(zip(model_names(paths), models)), data, cfg, out, val_fraction, split_seed)
        print(compare_table(reports, [t for t in (1, 5, 15, 50) if t <= cfg.horizon] or [cfg.horizon]))
    print(f"outputs in {out}")
    return 0


def format_report(report: EvalReport) -> str:
    lines = [horizon_table(report.horizon)]
    hd = report.heads
    tf = hd.teacher_forced
    lines.append(
        f"termination AUROC: imagined {hd.imagined.termination_auroc:.3f}"
        + (f", teacher-forced {tf.termination_auroc:.3f}" if tf else "")
        + f" ({hd.n_terminal} terminal of {hd.n_transitions} transitions); reward MAE {hd.imagined.reward_mae:.3f}"
    )
    if report.controllability:
        c = report.controllability
        lines.append(f"controllability: {c.mean:.2f} dB (own ground truth minus the other's, mean over 1..H)")
    return "\n".join(lines)

