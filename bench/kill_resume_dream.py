"""kill -9 benchmark of the online loop (not a test): SIGKILL `vidworld dream` at many moments, resume, compare.

    python bench/kill_resume_dream.py [--trials 8] [--targeted/--no-targeted] [--seed 0] [--config C] [--keep]

The tests kill the loop in-process (a KeyboardInterrupt at one chosen line); this kills the real process with
SIGKILL, as a crash, an OOM kill or a laptop lid does, at seeded random moments stratified over the whole run
(and, with --targeted, at moments seen on disk: the dream_state/ temp folder written, a world-model checkpoint
temp, an episode landing in the replay after the first checkpoint, the final model/ write), every third trial
killed again during its first resume. Config: configs/tiny/dream.yaml (1 torch thread, so runs are
deterministic on a shared machine), run on a snapshot of vidworld/ and configs/ taken at the start (the
working tree may be edited meanwhile; see kill_resume.snapshot_code).

A reference run and a control run (two uninterrupted runs must agree, else nothing below means anything),
then each trial, resumed with `--resume` until it completes, must end with:
  * log.jsonl rows and dream_summary.json's evaluations equal to the reference's (wall times aside);
  * the agent's checkpoint (networks, optimisers, normaliser, RNG) bit-identical; every tensor under model/
    bit-identical;
  * the replay: as many episodes, the i-th one's arrays equal to the reference's i-th (its number may differ:
    numbers a kill left on disk are never given out again, see data/README.md), episodes/ holding exactly the
    listed mp4 + npz files (nothing orphaned or duplicated), no hidden temp name anywhere.
Exit status 1 on any failing trial.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import kill_resume as kr  # bench/ is the script's folder, first on sys.path

THREADS = ["train.num_threads=1"]


def dream_cmd(config: Path, run: Path, resume: bool) -> list[str]:
    return [*kr.VIDWORLD, "dream", str(config), f"run_dir={run}", *THREADS, *(["--resume"] if resume else [])]


def _rows(path: Path) -> list[dict]:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []
    for r in rows:
        r.pop("wall_minutes", None)
    return rows


def _evaluations(run: Path) -> list[dict] | None:
    f = run / "dream_summary.json"
    if not f.is_file():
        return None
    return [{k: v for k, v in e.items() if k not in ("wall_minutes", "decisions_per_s")}
            for e in json.loads(f.read_text())["evaluations"]]


def _same_tree(a, b) -> bool:
    """Nested dicts/lists of tensors and plain values, compared bit for bit."""
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(
            a.reshape(-1).view(torch.uint8) if a.numel() else a, b.reshape(-1).view(torch.uint8) if b.numel() else b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b))
    return a == b


def compare_dream(run: Path, ref: Path, notes: list[str]) -> list[str]:
    import numpy as np
    import torch

    errors = []
    if (got := _rows(run / "log.jsonl")) != (want := _rows(ref / "log.jsonl")):
        i = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), len(want)))
        errors.append(f"log.jsonl differs from row {i + 1} ({len(got)} vs {len(want)} rows)")
    if _evaluations(run) != _evaluations(ref):
        errors.append(f"dream_summary evaluations differ: {_evaluations(run)} vs ref {_evaluations(ref)}")
    agent, ref_agent = run / "dream_state" / "agent.pt", ref / "dream_state" / "agent.pt"
    if not agent.is_file():
        errors.append("dream_state/agent.pt missing")
    elif not _same_tree(torch.load(agent, weights_only=False), torch.load(ref_agent, weights_only=False)):
        errors.append("dream_state/agent.pt differs from the reference's")
    errors += kr.compare_folder(run / "model", ref / "model", "model", notes)
    state, ref_state = (json.loads((r / "dream_state" / "state.json").read_text()) for r in (run, ref))
    names, ref_names = state["episodes"], ref_state["episodes"]
    if len(names) != len(ref_names):
        errors.append(f"replay lists {len(names)} episodes, the reference {len(ref_names)}")
    elif names != ref_names:  # by design: numbers seen on disk before a kill are never given out again
        notes.append(f"episode numbers differ from {next(n for n, m in zip(names, ref_names) if n != m)} on "
                     "(numbers burnt by the kill are not reused; the episodes are compared in order)")
    on_disk = set(os.listdir(run / "replay" / "episodes"))
    expected = {f"{n}.{x}" for n in names for x in ("mp4", "npz")}
    if on_disk != expected:
        errors.append(f"replay/episodes: unlisted {sorted(on_disk - expected)[:4]}, "
                      f"missing {sorted(expected - on_disk)[:4]}")
    for i, (n, m) in enumerate(zip(names, ref_names)):  # the i-th episode of both runs: same seed, same policy
        a, b = np.load(run / "replay" / "episodes" / f"{n}.npz"), np.load(ref / "replay" / "episodes" / f"{m}.npz")
        if a.files != b.files or not all(np.array_equal(a[k], b[k]) for k in a.files):
            errors.append(f"replay episode #{i} ({n}) differs from the reference's ({m})")
            break
    if hidden := kr.hidden_names(run):
        errors.append(f"hidden names left: {hidden[:5]}")
    return errors


def dream_phase(run: Path) -> str:
    """What a kill left: the last checkpointed iteration, episodes past it, temps."""
    it, listed = 0, []
    try:
        s = json.loads((run / "dream_state" / "state.json").read_text())
        it, listed = s["iteration"], s["episodes"]
    except (OSError, ValueError, KeyError):
        pass
    eps = run / "replay" / "episodes"
    on_disk = {n.split(".")[0] for n in os.listdir(eps) if n.startswith("ep_")} if eps.is_dir() else set()
    bits = [f"iteration {it} checkpointed" if it else "before the first checkpoint",
            f"{len(on_disk - set(listed))} episode(s) past it"]
    if hidden := kr.hidden_names(run):
        bits.append(f"temps {hidden[:2]}")
    if (run / "model").is_dir():
        bits.append("model/ written")
    return ", ".join(bits)


def timeline(config: Path, run: Path, log: Path) -> dict[str, float]:
    marks = {"dream_state": run / "dream_state", "wm ckpt": run / "world_model" / "stage_dynamics" / "checkpoints",
             "model/ written": run / "model", "summary": run / "dream_summary.json"}
    seen: dict[str, float] = {}
    t0 = time.perf_counter()

    def watch() -> bool:
        if "first output" not in seen and log.is_file() and log.stat().st_size > 0:
            seen["first output"] = time.perf_counter() - t0
        for k, p in marks.items():
            if k not in seen and p.exists():
                seen[k] = time.perf_counter() - t0
        return False

    a = kr.run_process(dream_cmd(config, run, False), log, kill_when=watch, poll=0.005)
    if a.rc != 0:
        raise SystemExit(f"reference dream run failed (rc {a.rc}):\n{a.output[-3000:]}")
    seen["exit"] = a.seconds
    return seen


def plan(rng: random.Random, n: int, tl: dict[str, float], targeted: bool) -> list[tuple[str, list]]:
    """Trials as (name, kills); a kill is (factory(run, log) -> kill_when, extra wait, description)."""
    first, span = tl["first output"], tl["exit"] - tl["first output"]

    def after(d: float):
        return lambda run, log: kr.AfterOutput(log, d, first)

    trials = []
    for i in range(n):
        d = (i + rng.random()) / n * span
        kills = [(after(d), 0.0, f"out+{d:.1f}s")]
        if i % 3 == 1:
            d2 = rng.uniform(0.0, span)
            kills.append((after(d2), 0.0, f"out+{d2:.1f}s"))
        trials.append(("random", kills))
    if targeted:
        w = rng.random()
        trials += [
            ("state-write", [(lambda run, log: kr.Appears(run, r"^\.dream_state\.tmp", 1), 0.0,
                              "dream_state/ temp seen")]),
            ("wm-ckpt-save", [(lambda run, log: kr.Appears(run / "world_model" / "stage_dynamics" / "checkpoints",
                                                           r"^\.checkpoint_\d+\.tmp", 2), 0.02 * w,
                               "2nd world-model ckpt temp")]),
            ("episode-past-ckpt", [(lambda run, log: _EpisodePastCheckpoint(run), 0.0,
                                    "episode appended after iteration 1's checkpoint")]),
            ("model-folder", [(lambda run, log: kr.Appears(run, r"^\.model\.tmp", 1), 0.01 * w,
                               "final model/ temp seen")]),
        ]
    return trials


class _EpisodePastCheckpoint:
    """kill_when: an episode file in the replay that the newest checkpoint (iteration >= 1) does not list."""

    def __init__(self, run: Path):
        self.run = run

    def __call__(self) -> bool:
        try:
            s = json.loads((self.run / "dream_state" / "state.json").read_text())
            listed = set(s["episodes"])
            names = {n.split(".")[0] for n in os.listdir(self.run / "replay" / "episodes") if n.endswith(".npz")}
        except (OSError, ValueError, KeyError):
            return False
        return s["iteration"] >= 1 and bool(names - listed)


def run_trial(config: Path, kills: list, run: Path, ref: Path) -> tuple[bool, str]:
    parts, errors, attempt, resume = [], [], 0, False
    kills = list(kills)
    while True:
        log = run.parent / f"{run.name}.attempt{attempt}.log"
        kill = kills.pop(0) if kills else None
        if kill is None:
            a = kr.run_process(dream_cmd(config, run, resume), log)
        else:
            factory, wait, _ = kill
            trigger = factory(run, log)
            poll = 0.0005 if isinstance(trigger, kr.AfterOutput) else 0.0
            a = kr.run_process(dream_cmd(config, run, resume), log, kill_when=trigger, extra_wait=wait, poll=poll)
        attempt += 1
        if a.killed_at is None:
            if kill is not None:
                parts.append(f"[{kill[2]}: not killed, run ended first]")
            if a.rc != 0:
                errors.append(f"attempt {attempt} exited {a.rc}: {a.output.strip().splitlines()[-1:]}")
            break
        parts.append(f"[kill@{a.killed_at:.1f}s ({kill[2]}): {dream_phase(run)}]")
        resume = True
        if attempt > 5:
            errors.append("more than 5 attempts")
            break
    notes: list[str] = []
    if not errors:
        errors = compare_dream(run, ref, notes)
    verdict = " -> IDENTICAL (logs, evaluations, agent, model, replay)" if not errors else " -> FAIL: " + \
        "; ".join(errors)
    return not errors, " ".join(parts) + verdict + (f" [NOTE: {'; '.join(notes[:3])}]" if notes else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=8, help="random-moment trials")
    p.add_argument("--targeted", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--config", default="configs/tiny/dream.yaml", help="dream config, relative to the repo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", help="work folder (default: a new temp dir, deleted unless --keep)")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(args.work or tempfile.mkdtemp(prefix="kill_resume_dream_"))
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    kr.snapshot_code(work / "code")
    config = work / "code" / args.config
    print(f"work folder {work}; config {args.config}", flush=True)
    ok_n = n = 0
    try:
        ref, control = work / "ref", work / "control"
        tl = timeline(config, ref, work / "ref.log")
        print("reference timeline: " + ", ".join(f"{k} {v:.1f}s" for k, v in tl.items()), flush=True)
        a = kr.run_process(dream_cmd(config, control, False), work / "control.log")
        notes: list[str] = []
        errs = [f"exit {a.rc}"] if a.rc != 0 else compare_dream(control, ref, notes)
        print(f"control (2nd uninterrupted run, {a.seconds:.1f}s): "
              f"{'IDENTICAL' if not errs else 'DIFFERENT: ' + '; '.join(errs)}", flush=True)
        if errs:
            print("uninterrupted runs differ: the comparison is meaningless; stopping")
            return 1
        for i, (name, kills) in enumerate(plan(rng, args.trials, tl, args.targeted)):
            t0 = time.perf_counter()
            ok, line = run_trial(config, kills, work / f"trial{i:02d}", ref)
            n += 1
            ok_n += ok
            print(f"dream #{i:02d} {name:17s} {time.perf_counter() - t0:5.1f}s {line}", flush=True)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"dream: {ok_n}/{n} identical ({time.perf_counter() - t_start:.0f} s)")
    return 0 if ok_n == n else 1


if __name__ == "__main__":
    sys.exit(main())
