"""Open-loop video prediction quality versus horizon, and reward/termination head quality.

Open loop: the model sees the first K real frames (and K-1 real actions), then imagines H frames under the
clip's real actions without ever seeing a real frame again; imagined frame t is compared with real frame
K+t. Two references bracket the model at every step:

* copy-last-frame: the last context frame compared with every target (what a model that learned no dynamics
  scores; `CopyLastFrameModel` reproduces it exactly);
* VAE ceiling: `model.reconstruct(target)` vs target, the best a latent model can do through its
  autoencoder (only if the model has `reconstruct`).

Every score is computed twice: over the whole frame, and over the target's moving region (pixels that
changed from the previous real frame, dilated 1 px: `vidworld.eval.moving`), where small moving objects
(a ball, a paddle) are not drowned by static background.

Batches are dicts as produced by `SegmentDataset` + DataLoader: `frames` uint8 [B, L, 3, H, W], `actions`
long [B, L-1] (actions[:, i] taken at frames[:, i]), `rewards` float [B, L-1], `terminated` / `truncated`
bool [B, L-1].
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from vidworld.eval.metrics import auroc, binary_accuracy
from vidworld.eval.moving import frame_scores, moving_mask

from vidworld.protocol import Autoencoder, TeacherForcedHeads, WorldModel

Batch = dict[str, Tensor]


# ----------------------------------------------------------------------------------------------- plumbing
def model_device(model: WorldModel) -> torch.device:
    """Where the model's tensors live (every protocol model declares `device`)."""
    return model.device


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """no_grad, and nn.Module.eval() for the duration (restoring the previous train/eval mode after)."""
    module = model if isinstance(model, torch.nn.Module) else None
    was_training = module.training if module is not None else False
    if module is not None:
        module.train(False)
    try:
        with torch.no_grad():
            yield
    finally:
        if module is not None:
            module.train(was_training)


def as_batches(data: Dataset | Iterable[Batch] | Batch, batch_size: int = 16) -> Iterable[Batch]:
    """A DataLoader, any iterable of batch dicts, a single batch dict, or a map-style Dataset of item dicts
    (wrapped in an in-order DataLoader of `batch_size`)."""
    if isinstance(data, dict):
        return [data]
    if isinstance(data, Dataset) and not isinstance(data, torch.utils.data.IterableDataset):
        return DataLoader(data, batch_size=batch_size, shuffle=False)
    return data


def _check_batch(batch: Batch, min_len: int, what: str) -> tuple[Tensor, Tensor]:
    for key in ("frames", "actions"):
        if key not in batch:
            raise KeyError(f"{what}: batch has no '{key}' (keys: {sorted(batch)})")
    frames, actions = batch["frames"], batch["actions"]
    if frames.dtype != torch.uint8 or frames.dim() != 5 or frames.shape[2] != 3:
        raise ValueError(
            f"{what}: frames must be uint8 [B, L, 3, H, W], got {frames.dtype} {tuple(frames.shape)}"
        )
    b, length = frames.shape[:2]
    if tuple(actions.shape) != (b, length - 1):
        raise ValueError(f"{what}: actions must be [B={b}, L-1={length - 1}], got {tuple(actions.shape)}")
    if length < min_len:
        raise ValueError(f"{what}: clips have {length} frames, need at least {min_len} (context + horizon)")
    return frames, actions


def episode_ends(batch: Batch) -> Tensor:
    """bool [B, L-1]: transition i ended the episode (terminated or truncated); all False if unknown."""
    ends = torch.zeros(batch["actions"].shape, dtype=torch.bool)
    for key in ("terminated", "truncated"):
        if key in batch:
            ends = ends | batch[key].bool().cpu()
    return ends


# ----------------------------------------------------------------------------------------------- rollouts
@dataclass(frozen=True)
class Imagination:
    """An open-loop rollout. frames uint8 [B, H, 3, h, w]; reward, termination_prob float [B, H]."""

    frames: Tensor
    reward: Tensor
    termination_prob: Tensor


def imagine(
    model: WorldModel,
    context_frames: Tensor,
    context_actions: Tensor,
    future_actions: Tensor,
    generator: torch.Generator | None = None,
) -> Imagination:
    """init on the context, then step under future_actions [B, H], decoding each new state.

    context_frames uint8 [B, K, 3, h, w]; context_actions long [B, K-1]; future_actions[:, 0] is the action
    taken at the last context frame. Returns CPU tensors.
    """
    device = model_device(model)
    horizon = future_actions.shape[1]
    frames, rewards, probs = [], [], []
    with eval_mode(model):
        state = model.init(context_frames.to(device), context_actions.to(device))
        future_actions = future_actions.to(device)
        for t in range(horizon):
            state, out = model.step(state, future_actions[:, t], generator=generator)
            frames.append(model.decode(state).cpu())
            rewards.append(out.reward.float().cpu())
            probs.append(out.termination_prob.float().cpu())
    return Imagination(torch.stack(frames, 1), torch.stack(rewards, 1), torch.stack(probs, 1))


def open_loop_rollout(
    model: WorldModel,
    frames: Tensor,
    actions: Tensor,
    context_length: int,
    horizon: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Imagine `horizon` frames from the first K real frames under the clip's real actions.

    frames uint8 [B, L, 3, h, w], actions long [B, L-1], L >= K + horizon.
    Returns imagined uint8 [B, horizon, 3, h, w]; imagined[:, t] is to be compared with frames[:, K + t].
    """
    k = context_length
    frames, actions = _check_batch({"frames": frames, "actions": actions}, k + horizon, "open_loop_rollout")
    future = actions[:, k - 1 : k - 1 + horizon]
    return imagine(model, frames[:, :k], actions[:, : k - 1], future, generator).frames


# ------------------------------------------------------------------------------------------ horizon eval
@dataclass(frozen=True)
class HorizonResult:
    """Mean per-frame PSNR (dB) / SSIM at imagined steps 1..H (index 0 = first imagined frame).

    n_valid[t] counts clips whose target t is still in the context's episode (targets after a terminated or
    truncated transition are excluded); every per-step mean is over those clips. vae_* are None when the
    model has no `reconstruct`.

    *_moving_*: the same scores inside the target's moving region (`vidworld.eval.moving`), averaged over
    the moving_n_valid[t] valid targets whose mask is non-empty (nan if none); moving_fraction[t] is the
    mean share of a valid target's pixels in the mask. None when not computed (results built by hand).
    """

    context_length: int
    horizon: int
    n_clips: int
    n_valid: tuple[int, ...]
    model_psnr: tuple[float, ...]
    model_ssim: tuple[float, ...]
    copy_last_psnr: tuple[float, ...]
    copy_last_ssim: tuple[float, ...]
    vae_psnr: tuple[float, ...] | None = None
    vae_ssim: tuple[float, ...] | None = None
    moving_n_valid: tuple[int, ...] | None = None
    moving_fraction: tuple[float, ...] | None = None
    model_moving_psnr: tuple[float, ...] | None = None
    model_moving_ssim: tuple[float, ...] | None = None
    copy_last_moving_psnr: tuple[float, ...] | None = None
    copy_last_moving_ssim: tuple[float, ...] | None = None
    vae_moving_psnr: tuple[float, ...] | None = None
    vae_moving_ssim: tuple[float, ...] | None = None

    @property
    def has_moving(self) -> bool:
        return self.model_moving_psnr is not None


def target_validity(batch: Batch, context_length: int, horizon: int) -> Tensor:
    """bool [B, H]: target frame K+t is in the same episode as the context.

    Target K+t is reached through transitions K-1 .. K-1+t; it is still valid if none of K-1 .. K-2+t ended
    the episode (the transition into the terminal frame itself is real). Clips whose context crosses an
    episode end are invalid throughout.
    """
    k = context_length
    ends = episode_ends(batch)
    context_ok = ~ends[:, : k - 1].any(1)
    # ended_before[:, t] = any(ends[:, k-1 : k-1+t]); cumulative OR shifted right by one.
    window = ends[:, k - 1 : k - 1 + horizon].int()
    ended_before = torch.cat([torch.zeros_like(window[:, :1]), window.cumsum(1)[:, :-1]], 1) > 0
    return context_ok[:, None] & ~ended_before


def evaluate_horizon(
    model: WorldModel,
    loader_or_batches: Dataset | Iterable[Batch] | Batch,
    context_length: int,
    horizon: int,
    generator: torch.Generator | None = None,
    max_batches: int | None = None,
    batch_size: int = 16,
) -> HorizonResult:
    """Open-loop PSNR/SSIM vs horizon for `model`, copy-last-frame and the VAE ceiling (module docstring).

    Clips must have L >= K + horizon frames (e.g. SegmentDataset(context_length=K, horizon=H)).
    """
    k, h = context_length, horizon
    has_vae = isinstance(model, Autoencoder)
    who = ["model", "copy_last"] + (["vae"] if has_vae else [])
    sums = {f"{w}_{m}": torch.zeros(h, dtype=torch.float64)
            for w in who for m in ("psnr", "ssim", "moving_psnr", "moving_ssim")}
    n_valid = torch.zeros(h, dtype=torch.long)
    n_moving = torch.zeros(h, dtype=torch.long)
    fraction = torch.zeros(h, dtype=torch.float64)
    n_clips = 0
    for i, batch in enumerate(as_batches(loader_or_batches, batch_size)):
        if max_batches is not None and i >= max_batches:
            break
        frames, actions = _check_batch(batch, k + h, "evaluate_horizon")
        frames, actions = frames.cpu(), actions.cpu()
        b = frames.shape[0]
        target = frames[:, k : k + h]  # [B, H, 3, h, w]
        mask = moving_mask(frames[:, k - 1 : k - 1 + h], target)  # [B, H, h, w]: changed from real frame t-1
        predictions = {
            "model": open_loop_rollout(model, frames, actions, k, h, generator),
            "copy_last": frames[:, k - 1 : k].expand_as(target),
        }
        if has_vae:
            with eval_mode(model):
                flat = target.reshape(b * h, *target.shape[2:]).to(model_device(model))
                predictions["vae"] = model.reconstruct(flat).cpu().reshape(target.shape)
        valid = target_validity(batch, k, h)
        moving = valid & mask.flatten(-2).any(-1)
        for w, pred in predictions.items():
            for m, value in frame_scores(pred, target, mask).items():
                keep = moving if m.startswith("moving") else valid
                sums[f"{w}_{m}"] += value.double().nan_to_num(0.0).mul(keep).sum(0)
        n_valid += valid.sum(0)
        n_moving += moving.sum(0)
        fraction += (mask.flatten(-2).double().mean(-1) * valid).sum(0)
        n_clips += b
    if n_clips == 0:
        raise ValueError("evaluate_horizon: no batches to evaluate (empty loader or max_batches=0)")

    def mean(key: str, counts: Tensor = n_valid) -> tuple[float, ...] | None:
        if key not in sums:
            return None
        return tuple((sums[key] / counts.clamp_min(1)).where(counts > 0, float("nan")).tolist())

    return HorizonResult(
        context_length=k,
        horizon=h,
        n_clips=n_clips,
        n_valid=tuple(n_valid.tolist()),
        model_psnr=mean("model_psnr"),
        model_ssim=mean("model_ssim"),
        copy_last_psnr=mean("copy_last_psnr"),
        copy_last_ssim=mean("copy_last_ssim"),
        vae_psnr=mean("vae_psnr"),
        vae_ssim=mean("vae_ssim"),
        moving_n_valid=tuple(n_moving.tolist()),
        moving_fraction=tuple((fraction / n_valid.clamp_min(1)).where(n_valid > 0, float("nan")).tolist()),
        model_moving_psnr=mean("model_moving_psnr", n_moving),
        model_moving_ssim=mean("model_moving_ssim", n_moving),
        copy_last_moving_psnr=mean("copy_last_moving_psnr", n_moving),
        copy_last_moving_ssim=mean("copy_last_moving_ssim", n_moving),
        vae_moving_psnr=mean("vae_moving_psnr", n_moving),
        vae_moving_ssim=mean("vae_moving_ssim", n_moving),
    )


# -------------------------------------------------------------------------------------------- heads eval
@dataclass(frozen=True)
class HeadScores:
    """Quality of predicted termination (AUROC; accuracy at p > 0.5) and reward (mean absolute error)."""

    termination_auroc: float
    termination_accuracy: float
    reward_mae: float


@dataclass(frozen=True)
class HeadsResult:
    """Head quality over 1-step transitions. `imagined`: the step's own outputs (judging the model's own
    next frame); `teacher_forced`: `predict_heads` on the encoded *real* next frame (None if the model has no
    `predict_heads` + `encode`). termination_rate is the positive base rate (accuracy of always-False is
    1 - rate), nan AUROC means one class was absent."""

    n_transitions: int
    n_terminal: int
    termination_rate: float
    imagined: HeadScores
    teacher_forced: HeadScores | None


def _scores(probs: list[Tensor], rewards: list[Tensor], terms: Tensor, true_rewards: Tensor) -> HeadScores:
    p, r = torch.cat(probs).float(), torch.cat(rewards).float()
    return HeadScores(
        termination_auroc=auroc(p, terms),
        termination_accuracy=binary_accuracy(p, terms),
        reward_mae=(r - true_rewards).abs().mean().item(),
    )


def evaluate_heads(
    model: WorldModel,
    loader: Dataset | Iterable[Batch] | Batch,
    context_length: int,
    generator: torch.Generator | None = None,
    max_batches: int | None = None,
    all_windows: bool = False,
    batch_size: int = 16,
) -> HeadsResult:
    """Reward / termination head quality on real 1-step transitions.

    Each window is K context frames + the real next frame; the transition under test is the real action
    taken at the last context frame (actions[:, s+K-1]), judged against the real rewards / terminated at that
    index. With `all_windows=False` only the window starting at frame 0 of each clip is used, which is right
    for clips of exactly K+1 frames from a stride-1 dataset (SegmentDataset(context_length=K, horizon=1));
    `all_windows=True` slides over every window of longer clips (do not combine with overlapping clips, or
    transitions are counted several times). Windows whose context crosses an episode end are skipped.

    Terminal transitions are rare (~1 in 22 CartPole random steps): pass a loader over the WHOLE validation
    split (no max_batches, no random subset) so that every window ending in a terminal step is scored.
    """
    k = context_length
    teacher = isinstance(model, TeacherForcedHeads)
    device = model_device(model)
    im_p, im_r, tf_p, tf_r, terms, rewards = [], [], [], [], [], []
    for i, batch in enumerate(as_batches(loader, batch_size)):
        if max_batches is not None and i >= max_batches:
            break
        frames, actions = _check_batch(batch, k + 1, "evaluate_heads")
        for key in ("rewards", "terminated"):
            if key not in batch:
                raise KeyError(f"evaluate_heads: batch has no '{key}' (keys: {sorted(batch)})")
        frames, actions = frames.cpu(), actions.cpu()
        real_terms, real_rewards = batch["terminated"].bool().cpu(), batch["rewards"].float().cpu()
        ends = episode_ends(batch)
        starts = range(frames.shape[1] - k) if all_windows else range(1)
        for s in starts:
            rows = ~ends[:, s : s + k - 1].any(1)
            if not rows.any():
                continue
            ctx = frames[rows, s : s + k].to(device)
            ctx_a = actions[rows, s : s + k - 1].to(device)
            act = actions[rows, s + k - 1].to(device)
            with eval_mode(model):
                state = model.init(ctx, ctx_a)
                _, out = model.step(state, act, generator=generator)
                im_p.append(out.termination_prob.float().cpu())
                im_r.append(out.reward.float().cpu())
                if teacher:
                    latent = model.encode(frames[rows, s + k].to(device))
                    forced = model.predict_heads(state, act, latent)
                    tf_p.append(forced.termination_prob.float().cpu())
                    tf_r.append(forced.reward.float().cpu())
            terms.append(real_terms[rows, s + k - 1])
            rewards.append(real_rewards[rows, s + k - 1])
    if not terms:
        raise ValueError(
            "evaluate_heads: no valid windows (empty loader, or every context crosses an episode end)"
        )
    term, rew = torch.cat(terms), torch.cat(rewards)
    return HeadsResult(
        n_transitions=term.numel(),
        n_terminal=int(term.sum()),
        termination_rate=term.double().mean().item(),
        imagined=_scores(im_p, im_r, term, rew),
        teacher_forced=_scores(tf_p, tf_r, term, rew) if teacher else None,
    )
