"""`vidworld eval-wm --model DIR`: score a world model on held-out episodes; write table, plot, video, json.

Outputs (in --out, default DIR/../eval):
  horizon.md / horizon.json     PSNR and SSIM at imagined steps 1..H vs copy-last-frame and the VAE ceiling
  psnr_vs_horizon.png           the same as a plot
  rollouts.mp4 / rollouts.gif   ground truth (left) and imagination (right) under the real actions
  summary.json                  everything above + head AUROC + controllability

Every PSNR/SSIM is reported over the whole frame and over the moving region (pixels that changed from the
previous real frame, dilated 1 px: `vidworld.eval.moving`), where a small moving ball is not averaged away.
Controllability needs the real env replayed under other actions: classic control from the recorded state
(`replay.py`), ALE and MiniGrid from the episode's start snapshot (`episode_replay.py`); where neither is
possible it is null and summary.json says why (`controllability_unavailable`).
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from vidworld.config import MAX_SEED, from_dict
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
    target_validity,
)
from vidworld.eval.episode_replay import BranchPoint, EpisodeReplay, ReplayMismatch
from vidworld.eval.moving import MOVING_MASK_DEFINITION
from vidworld.eval.speed import ImaginationSpeed, imagination_speed
from vidworld.eval.replay import StateReplay, supports_replay
from vidworld.eval.report import horizon_table, plot_psnr_vs_horizon, side_by_side_video, write_json
from vidworld.paths import check_input_dir, check_output_dir
from vidworld.precision import PRECISIONS, inference_autocast
from vidworld.protocol import WorldModel
from vidworld.world_models.compat import check_dataset


@dataclass(frozen=True)
class EvalReport:
    horizon: HorizonResult
    heads: HeadsResult
    controllability: ControllabilityResult | None
    out_dir: Path
    speed: ImaginationSpeed | None = None
    controllability_unavailable: str | None = None  # why controllability is None
    precision: str = "fp32"  # the networks' arithmetic while scored (EvalConfig.precision, resolved)

    def summary(self) -> dict:
        h = self.horizon
        above = [m > c for m, c in zip(h.model_psnr, h.copy_last_psnr)]
        return {
            "horizon": asdict(h),
            "model_beats_copy_last_at_every_step": all(above),
            "heads": asdict(self.heads),
            "controllability": asdict(self.controllability) if self.controllability else None,
            "imagination": asdict(self.speed) if self.speed else None,
            "moving_region": moving_summary(h),
            "controllability_unavailable": self.controllability_unavailable,
            "precision": self.precision,
        }


def moving_summary(h: HorizonResult) -> dict | None:
    """The moving-region numbers of `h` per horizon step (index 0 = step 1), grouped for readers."""
    if not h.has_moving:
        return None
    pairs = [(m, c) for m, c in zip(h.model_moving_psnr, h.copy_last_moving_psnr) if m == m and c == c]
    return {
        "mask": MOVING_MASK_DEFINITION,
        "n_frames": h.moving_n_valid,
        "pixel_fraction": h.moving_fraction,
        "moving_psnr_db": {"model": h.model_moving_psnr, "copy_last": h.copy_last_moving_psnr,
                           "vae_ceiling": h.vae_moving_psnr},
        "moving_ssim": {"model": h.model_moving_ssim, "copy_last": h.copy_last_moving_ssim,
                        "vae_ceiling": h.vae_moving_ssim},
        # over the steps that have moving frames at all
        "model_beats_copy_last_at_every_step": bool(pairs) and all(m > c for m, c in pairs),
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


def _heldout_clips(model: WorldModel, data_path: str, cfg: EvalConfig, val_fraction: float, split_seed: int,
                   window_context: int) -> tuple[SegmentDataset, Callable, DataLoader]:
    """The held-out windows (context `window_context` + cfg.horizon frames), their collate (cutting a longer
    window to the model's K) and a loader of cfg.max_clips of them spread over the split."""
    K, H, W = model.context_length, cfg.horizon, window_context
    if W < K:
        raise ValueError(f"window_context {W} is shorter than the model's context_length {K}")
    clips = SegmentDataset(data_path, W, H, split="val", val_fraction=val_fraction, split_seed=split_seed)
    check_dataset(model, clips.store)
    if len(clips) == 0:
        raise ValueError(f"{data_path}: no held-out window of {W + H} frames; collect longer/more episodes")
    collate = _collate if W == K else (lambda items: newest_context(_collate(items), W - K))
    subset = Subset(clips, _spread(len(clips), cfg.max_clips))
    return clips, collate, DataLoader(subset, batch_size=cfg.batch_size, collate_fn=collate)


def score_horizon(model: WorldModel, data_path: str, cfg: EvalConfig, val_fraction: float = 0.1,
                  split_seed: int = 0, window_context: int | None = None) -> HorizonResult:
    """Only the open-loop PSNR/SSIM-vs-horizon part of `evaluate_world_model` (same clips, same generator, same
    numbers), without heads, speed, video, controllability or files: for scoring many checkpoints of a run."""
    _, _, loader = _heldout_clips(model, data_path, cfg, val_fraction, split_seed,
                                  window_context or model.context_length)
    g = torch.Generator(device=model.device).manual_seed(cfg.seed)
    with inference_autocast(model.device, cfg.precision):
        return evaluate_horizon(model, loader, model.context_length, cfg.horizon, generator=g)


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
    clips, collate, loader = _heldout_clips(model, data_path, cfg, val_fraction, split_seed, W)
    data_env = clips.store.manifest.get("env_id")
    if env_cfg is not None and data_env and env_cfg.id != data_env:  # the demo passes its collect.env
        raise ValueError(f"dataset {data_path} holds {data_env} episodes, but the real env given to replay them "
                         f"is {env_cfg.id}")
    g = torch.Generator(device=model.device).manual_seed(cfg.seed)
    with inference_autocast(model.device, cfg.precision) as precision:  # every network call of the scoring
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
        fps = int(clips.store.manifest.get("fps", 10))
        for suffix in (".mp4", ".gif"):
            side_by_side_video(gt, imagined, out_dir / f"rollouts{suffix}", fps=fps)

        env_id = clips.store.manifest.get("env_id") or ""
        ctrl = why_not = None
        try:
            ctrl = _controllability(model, clips, cfg, env_cfg, g, W - K)
        except ControllabilityUnavailable as e:
            why_not = str(e)
    report = EvalReport(horizon, heads, ctrl, out_dir, speed, why_not, precision)
    (out_dir / "horizon.md").write_text(horizon_table(horizon) + "\n")
    write_json(horizon, out_dir / "horizon.json")
    plot_psnr_vs_horizon(horizon, out_dir / "psnr_vs_horizon.png", title=f"{env_id}: open-loop PSNR vs horizon")
    write_json(report.summary(), out_dir / "summary.json")
    return report


class ControllabilityUnavailable(ValueError):
    """Controllability cannot be computed on this dataset (the message says why); eval-wm reports null."""


def _controllability(model, clips: SegmentDataset, cfg: EvalConfig, env_cfg: PixelEnvConfig | None, g,
                     offset: int = 0) -> ControllabilityResult:
    """Same context, two action sequences (the real ones, and each id shifted by n//2 modulo n: another action
    at every step; for CartPole's two actions, left <-> right), real futures of both by replaying the real env:
    classic control from the recorded state of the last context frame, ALE/MiniGrid from the episode's start
    snapshot. Raises ControllabilityUnavailable saying why when the env cannot be replayed."""
    env_id = clips.store.manifest.get("env_id") or ""
    if cfg.controllability_clips == 0:
        raise ControllabilityUnavailable("skipped: eval.controllability_clips = 0")
    K, H = model.context_length, cfg.horizon
    state_replay = supports_replay(env_id)
    if state_replay:
        idx = _spread(len(clips), cfg.controllability_clips)
    else:  # windows of episodes that kept their start snapshot (a dataset may mix old and new episodes)
        has_start = {ep for ep in clips.episode_ids if clips.store.arrays(ep).episode_start is not None}
        replayable = [i for i in range(len(clips)) if clips.window(i)[0] in has_start] if has_start else []
        if not replayable:
            if env_id.startswith(("ALE/", "MiniGrid")):
                raise ControllabilityUnavailable(
                    f"the held-out episodes of {clips.store.root} carry no episode_start snapshot (collected before "
                    f"vidworld recorded them); collect again to score controllability on {env_id}")
            raise ControllabilityUnavailable(
                f"{env_id or 'this dataset'} cannot be replayed: no settable state (classic control) and no "
                "episode_start snapshots (ALE, MiniGrid)")
        idx = [replayable[j] for j in _spread(len(replayable), cfg.controllability_clips)]
    batch = newest_context(_collate([clips[i] for i in idx]), offset)
    acts_a = batch["actions"][:, K - 1 : K - 1 + H]
    if state_replay:
        states = []
        for i in idx:
            ep, start = clips.window(i)
            st = clips.store.arrays(ep).state
            if st is None:
                raise ControllabilityUnavailable(f"{clips.store.root}: episode {ep} has no recorded state; "
                                                 "cannot replay")
            states.append(torch.as_tensor(st[start + offset + K - 1]))
        replay = StateReplay(env_cfg or PixelEnvConfig(id=env_id, frame_size=model.frame_size))
        gt = lambda actions: replay(torch.stack(states), actions)  # noqa: E731
    else:
        points = []
        for row, i in enumerate(idx):
            ep, start = clips.window(i)
            a = clips.store.arrays(ep)
            branch = start + offset + K - 1  # the last context frame
            points.append(BranchPoint(a.episode_start, a.actions[:branch], batch["frames"][row, K - 1],
                                      clips.store.episodes[ep].name))
        replay = EpisodeReplay(env_cfg or collected_env(clips.store.meta, env_id, model.frame_size))
        gt = lambda actions: replay(points, actions)  # noqa: E731
    n = replay.num_actions  # the real env's: a model may take more actions than the env has (check_dataset)
    acts_b = (acts_a + n // 2) % n
    try:
        gt_a, gt_b = gt(acts_a), gt(acts_b)
        if not state_replay:  # exact replay: the real actions must give the recorded future
            check_replayed_future(gt_a, batch, K, H)
    except ReplayMismatch as e:
        raise ControllabilityUnavailable(f"replay did not reproduce the recorded episodes: {e}") from None
    finally:
        replay.close()
    return controllability(model, batch["frames"][:, :K], batch["actions"][:, : K - 1], acts_a, acts_b, gt_a, gt_b, g)


def collected_env(meta: dict, env_id: str, frame_size: int) -> PixelEnvConfig:
    """The env settings the dataset was collected with (manifest meta["collect"]["env"]: frame skip, sticky
    actions...), else the defaults for `env_id`."""
    recorded = (meta.get("collect") or {}).get("env")
    return from_dict(PixelEnvConfig, recorded) if recorded else PixelEnvConfig(id=env_id, frame_size=frame_size)


def check_replayed_future(replayed: Tensor, batch: dict, context_length: int, horizon: int) -> None:
    """Raise ReplayMismatch unless replayed uint8 [B, H, 3, S, S] (the real actions from the last context
    frame) equals the recorded frames K..K+H-1 of every clip, up to the episode's end."""
    k = context_length
    valid = target_validity(batch, k, horizon)
    recorded = batch["frames"][:, k : k + horizon]
    same = (replayed == recorded).flatten(2).all(2) | ~valid  # [B, H]
    if not bool(same.all()):
        b, t = (~same).nonzero()[0].tolist()
        raise ReplayMismatch(f"clip {b}: the replayed frame {t + 1} steps after the context differs from the "
                             "recorded one")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, action="append",
                   help="world model folder (from `vidworld train`); repeat to compare several on one table/chart")
    p.add_argument("--data", default=None, help="dataset folder (default: the one the model was trained on)")
    p.add_argument("--out", default=None, help="output folder (default: <model>/../eval)")
    p.add_argument("--horizon", type=int, default=EvalConfig.horizon)
    p.add_argument("--max-clips", type=int, default=EvalConfig.max_clips)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=PRECISIONS, default=EvalConfig.precision,
                   help="the networks' arithmetic while scored: fp32, or auto/bf16 as the planners and the "
                        "actor-critic run the model (bf16 where the CPU/GPU has it natively)")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="share of --data's episodes scored (its hash split, as in training; default: the first "
                        "model's own val_fraction, so episodes it trained on are never scored). A separately "
                        "collected held-out set can use e.g. 0.9 to score almost all of it")


def run(args: argparse.Namespace) -> int:
    from vidworld.world_models import load_world_model

    if args.horizon < 1:
        raise ValueError(f"--horizon must be >= 1, got {args.horizon}")
    if args.val_fraction is not None and not 0.0 < args.val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in (0, 1) (the hash split keeps one training episode), "
                         f"got {args.val_fraction}")
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
    cfg = EvalConfig(horizon=args.horizon, max_clips=args.max_clips, seed=args.seed, precision=args.precision)
    if len(models) > 1:  # every model against the data before any is evaluated (each takes minutes)
        store = EpisodeStore.open(data, skip_corrupt=True)
        for path, m in zip(paths, models):
            check_dataset(m, store, what=f"dataset (for --model {path})")
    # the held-out split of the first model; the others are scored on the same episodes
    val_fraction, split_seed = first.meta.get("val_fraction", 0.1), first.meta.get("split_seed", 0)
    if args.val_fraction is not None:
        val_fraction = args.val_fraction
    for path, m in zip(paths, models):
        if Path(str(m.meta.get("dataset"))).resolve() != Path(data).resolve():
            continue  # scored on data it did not train on: any split is held out for it
        if (m.meta.get("val_fraction", 0.1), m.meta.get("split_seed", 0)) != (val_fraction, split_seed):
            warnings.warn(f"{path} was trained on {data} with another train/val split than the one scored here "
                          f"(val_fraction {val_fraction}, split_seed {split_seed}): its held-out score may include "
                          "episodes it trained on", stacklevel=1)
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
    h = report.horizon
    if h.has_moving:
        steps = [t for t in (1, 5, 15, 50) if t <= h.horizon]
        cells = [f"{t}: model {_db(h.model_moving_psnr[t - 1])} / copy-last {_db(h.copy_last_moving_psnr[t - 1])}"
                 + (f" / VAE {_db(h.vae_moving_psnr[t - 1])}" if h.vae_moving_psnr else "") for t in steps]
        lines.append("moving-region PSNR (dB) at step " + "; ".join(cells))
    if report.controllability:
        c = report.controllability
        lines.append(f"controllability: {c.mean:.2f} dB (own ground truth minus the other's, mean over 1..H)")
    elif report.controllability_unavailable:
        lines.append(f"controllability: not computed ({report.controllability_unavailable})")
    return "\n".join(lines)


def _db(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.2f}"

