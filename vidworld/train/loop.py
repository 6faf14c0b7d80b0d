"""The one accelerate training loop every stage of every world model runs (VAE, dynamics, RSSM, ...).

    acc = make_accelerator(cfg, stage_dir)
    torch.manual_seed(cfg.seed); module = build(); opt = adamw(module.parameters(), lr, wd)
    module, opt = acc.prepare(module, opt)
    result = train_loop(acc, module, opt, Stage("vae", steps, batch_size, lr), cfg, batch_loss)

Reads top to bottom (cleanrl / accelerate examples): set the LR, accumulate, backward, clip, step, log the
window mean, save_state. `batch_loss(generator) -> (loss, logs)` draws its own batch from `generator` (a
checkpointed torch.Generator) and returns a scalar loss and floats/0-d tensors to log.

Exact resume: the newest complete checkpoint restores weights, optimizer, RNGs, the batch generator, the
step counter, any extra state (e.g. an EMA) and the open logging window, and `log.jsonl` is cut back to the
checkpoint's step, so a killed-and-resumed run writes the same rows and weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from vidworld.atomic import atomic_write_text, remove_stale_temps
from vidworld.train.checkpoint import (
    GeneratorState,
    TrainProgress,
    prune_checkpoints,
    resume_if_possible,
    save_checkpoint,
)
from vidworld.train.config import TrainConfig
from vidworld.train.log import WindowMean, append_log, truncate_log
from vidworld.train.optim import lr_at, set_lr

BatchLoss = Callable[[torch.Generator], tuple[torch.Tensor, dict[str, Any]]]


@dataclass(frozen=True)
class Stage:
    """name: log/tqdm label; steps: optimizer steps; batch_size: per process (for samples/s); lr: peak LR;
    postfix: {label: (log key, format)} shown on the progress bar."""

    name: str
    steps: int
    batch_size: int
    lr: float
    postfix: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class LoopResult:
    steps: int  # the step reached (== stage.steps)
    samples_per_s: float  # of the steps run in this call (nan if resumed at the end)
    resumed_from: int | None  # the checkpoint step resumed from, if any
    seconds: float = 0.0  # spent in this call's steps (to its last checkpoint stamp)
    total_seconds: float = 0.0  # to reach `steps`, summed over every call (work redone after a kill counts once)


def train_loop(
    acc: Accelerator,
    module: torch.nn.Module,
    opt: torch.optim.Optimizer,
    stage: Stage,
    cfg: TrainConfig,
    batch_loss: BatchLoss,
    *,
    resume: bool = False,
    progress: bool = True,
    checkpointables: Sequence[Any] = (),
    after_step: Callable[[], None] | None = None,
) -> LoopResult:
    """Run `stage.steps` optimizer steps of `batch_loss` (see module docstring); checkpoints and `log.jsonl`
    go to the accelerator's project dir. `checkpointables` (objects with state_dict/load_state_dict) are
    saved with every checkpoint; `after_step` runs after each optimizer step (e.g. an EMA update)."""
    stage_dir = Path(acc.project_configuration.project_dir)
    prog, window = TrainProgress(), WindowMean()
    gen = torch.Generator().manual_seed(cfg.seed + 7919 * acc.process_index)  # batch draws, per process
    acc.register_for_checkpointing(prog, *checkpointables, GeneratorState(gen), window)
    log_file = stage_dir / "log.jsonl"
    resumed = prog.step if resume_if_possible(acc, resume, max_step=stage.steps) else None
    if resumed is not None and progress:
        acc.print(f"[{stage.name}] resumed at step {prog.step}")
    if acc.is_main_process:
        remove_stale_temps(stage_dir)  # e.g. a log rewrite a kill interrupted
        remove_stale_temps(stage_dir / "checkpoints")  # a checkpoint a kill left half-written
        prune_checkpoints(stage_dir / "checkpoints", cfg.keep_checkpoints)  # a kill during the last prune
        truncate_log(log_file, prog.step)  # rows past the checkpoint are redone below (none on a fresh run)
    if acc.log_with:
        acc.init_trackers(stage.name)
    bar = tqdm(total=stage.steps, initial=prog.step, desc=f"train {stage.name}",
               disable=not (progress and acc.is_main_process))
    t0, n0, base = time.perf_counter(), prog.step, prog.seconds
    while prog.step < stage.steps:
        set_lr(opt, lr_at(prog.step, stage.lr, cfg.warmup_steps, stage.steps, cfg.lr_schedule))
        with acc.accumulate(module):
            loss, logs = batch_loss(gen)
            acc.backward(loss)
            if acc.sync_gradients and cfg.grad_clip > 0:
                acc.clip_grad_norm_(module.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        if not acc.sync_gradients:
            continue
        if after_step is not None:
            after_step()
        prog.step += 1
        bar.update(1)
        window.add(loss=loss.detach(), **logs)
        if prog.step % cfg.log_every == 0 or prog.step == stage.steps:
            row = {"stage": stage.name, "step": prog.step, **window.pop()}
            bar.set_postfix({label: format(row[key], fmt) for label, key, fmt in stage.postfix if key in row})
            if acc.log_with:
                acc.log(row, step=prog.step)
            if acc.is_main_process:
                append_log(log_file, row)
        if prog.step % cfg.checkpoint_every == 0 or prog.step == stage.steps:
            prog.seconds = base + time.perf_counter() - t0
            save_checkpoint(acc, prog.step, cfg.keep_checkpoints)
    bar.close()
    elapsed = time.perf_counter() - t0
    rate = (prog.step - n0) * stage.batch_size * acc.num_processes / elapsed if prog.step > n0 else float("nan")
    if acc.is_main_process:  # read back by a later call that skips a finished stage (its time still counts)
        atomic_write_text(stage_dir / "timing.json", json.dumps({"steps": prog.step, "seconds": prog.seconds}))
    acc.wait_for_everyone()
    for tracker in acc.trackers:  # not acc.end_training(): it also destroys the process group
        tracker.finish()
    return LoopResult(steps=prog.step, samples_per_s=rate, resumed_from=resumed, seconds=prog.seconds - base,
                      total_seconds=prog.seconds)


def finished_stage(stage_dir: str | Path) -> LoopResult:
    """The result of a stage finished by an earlier call and skipped now: nothing ran in this call, the total is
    what its `timing.json` recorded (nan if none)."""
    return LoopResult(steps=-1, samples_per_s=float("nan"), resumed_from=None, seconds=0.0,
                      total_seconds=stage_seconds(stage_dir))


def stage_minutes(call_seconds: float, loop: LoopResult) -> float:
    """A stage's minutes from scratch: this call's time for it, with the loop's part replaced by the loop's
    total over every call (the work outside the loop, e.g. encoding or saving, counts as this call did it)."""
    return (call_seconds - loop.seconds + loop.total_seconds) / 60


def stage_seconds(stage_dir: str | Path) -> float:
    """The training-loop seconds a finished stage took (its `timing.json`; nan if it has none)."""
    try:
        return float(json.loads((Path(stage_dir) / "timing.json").read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return float("nan")
