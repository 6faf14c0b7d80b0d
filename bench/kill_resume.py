"""kill -9 benchmark (not a test): SIGKILL `vidworld train` and `vidworld collect` at many moments, rerun,
and check that nothing was lost, orphaned, duplicated or changed. Prints one line per trial and a summary.

    python bench/kill_resume.py [--train-trials 15] [--collect-trials 6] [--no-targeted] [--seed 0] [--keep]

Training (configs/tiny/diffusion.yaml on data/fixture/cartpole, step counts raised, 1 torch thread so runs
are deterministic and fast on a shared 2-core machine): one uninterrupted reference run (plus a second one,
the control: two uninterrupted runs must already agree, else nothing below means anything), then per trial
a run killed after a seeded random delay, resumed with `--resume` until it completes. Delays are stratified
over the whole training (one in start-up, four aimed at the late vae/ and model/ folder writes) and counted
from the attempt's first output, scaled by its start-up time against the reference's: on a shared machine a
plain delay from process start mostly lands in start-up. Every third trial is killed again during its first
resume. `--targeted` adds trials killed when a given moment is seen on disk (a
checkpoint temp folder, the vae/ or model/ temp folder, the final checkpoint's rename, a log row written
past the newest checkpoint, just after a resume). Each trial must end with:
  * every tensor of every safetensors file under model/ (and vae/) bit-identical to the reference's (other
    files under them that differ are printed as a NOTE; --strict makes them fail the trial);
  * stage_vae/log.jsonl and stage_dynamics/log.jsonl byte-identical;
  * no hidden (temp) name anywhere in the run folder; checkpoints/ holding only complete checkpoint_<step>
    folders, the same steps as the reference's, the newest with the reference's weights;
  * every restart resumed from the newest complete checkpoint the kill left ("[vae] resumed at step N").

Collection (`vidworld collect --env CartPole-v1 --steps 300 --frame-size 16`): per trial (own seed) an
uninterrupted reference, then the same command killed at a random moment (or, with --targeted, when an
episode's mp4/npz temp, a fresh orphan episode file or the new store's episodes/ folder is seen) and run
again. Clean means: the
store opens without any leftover warning and every episode loads (frame sums checked); the folder holds
exactly manifest.json and the listed episodes' mp4 + npz; no number seen on disk after the kill is given to
a new episode and no pre-kill episode was rewritten; every episode that survived the kill equals the
reference's episode of the same number. Whether the final dataset equals the uninterrupted one is reported:
by design it cannot (a rerun appends a new `--steps` run seeded from (seed, first new episode number)).

Trials run one after another (never in parallel), on a snapshot of vidworld/ and configs/ taken at the start
(see snapshot_code). Work folders go to a temp dir (kept with --keep). Exit status 1 on any failing trial.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_SCRIPT = Path(sys.executable).with_name("vidworld")
VIDWORLD = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "vidworld.cli"]
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "PYTHONUNBUFFERED": "1"}
CONFIG = REPO / "configs" / "tiny" / "diffusion.yaml"  # replaced by its snapshot (see snapshot_code)
VAE_STEPS, DYN_STEPS, CKPT_EVERY, LOG_EVERY = 61, 121, 7, 5  # final steps off both grids: partial windows
TRAIN_OVERRIDES = [f"train.vae_steps={VAE_STEPS}", f"train.dynamics_steps={DYN_STEPS}",
                   f"train.checkpoint_every={CKPT_EVERY}", f"train.log_every={LOG_EVERY}",
                   "train.num_threads=1"]
STAGES = ("stage_vae", "stage_dynamics")
CKPT = re.compile(r"^checkpoint_(\d+)$")
TIMEOUT = 600.0  # per process; the machine may be shared with a long training


def snapshot_code(dest: Path) -> None:
    """Run every process on a copy of vidworld/ and the config taken now: the working tree is shared with
    other engineers, and a file edited mid-benchmark would make a resumed run differ from its reference
    (or refuse to resume) for reasons that have nothing to do with the kill. The copy comes first on
    PYTHONPATH (before the editable install's finder); this process imports it too (the store checks)."""
    global CONFIG
    shutil.copytree(REPO / "vidworld", dest / "vidworld", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "configs", dest / "configs")
    CONFIG = dest / "configs" / "tiny" / "diffusion.yaml"
    ENV["PYTHONPATH"] = os.pathsep.join([str(dest), *filter(None, [os.environ.get("PYTHONPATH")])])
    sys.path.insert(0, str(dest))  # bench script only: the package itself never does this




# ------------------------------------------------------------------------------------------ processes
@dataclass
class Attempt:
    """One process: killed at `killed_at` seconds (None: it exited by itself with `rc`)."""

    rc: int | None
    killed_at: float | None
    seconds: float
    output: str
    survivors: int = 0  # children (ffmpeg) that outlived the kill; waited for before going on


def _group_members(pgid: int) -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(d)) == pgid:
                    pids.append(int(d))
    return pids


def run_process(cmd: list[str], log: Path, kill_after: float | None = None,
                kill_when: Callable[[], bool] | None = None, extra_wait: float = 0.0,
                poll: float | None = None) -> Attempt:
    """Run `cmd` (own session, output to `log`); SIGKILL its main process (only it, as `kill -9 PID` does)
    `kill_after` seconds after start or `extra_wait` seconds after `kill_when()` first holds (busy-polled
    unless `poll` seconds are given: a busy poll slows the process under test, so timing runs must not).
    Children that survive the kill are waited for (up to 20 s), then their group is killed."""
    with open(log, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=ENV,
                             start_new_session=True)
        t0, fired, killed_at = time.perf_counter(), None, None
        try:
            while p.poll() is None:
                t = time.perf_counter() - t0
                if t > TIMEOUT:
                    raise TimeoutError(f"{' '.join(cmd)} still running after {TIMEOUT:.0f} s (see {log})")
                if fired is None and ((kill_after is not None and t >= kill_after)
                                      or (kill_when is not None and kill_when())):
                    fired = t
                if fired is not None and t >= fired + extra_wait:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()
                    killed_at = time.perf_counter() - t0
                    break
                time.sleep(poll if poll is not None else 0 if kill_when is not None else 0.001)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        seconds = time.perf_counter() - t0
        survivors = _group_members(p.pid)
        deadline = time.perf_counter() + 20
        while _group_members(p.pid) and time.perf_counter() < deadline:
            time.sleep(0.01)
        if _group_members(p.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
    return Attempt(None if killed_at is not None else p.returncode, killed_at, seconds,
                   log.read_text(errors="replace"), len(survivors))


class Appears:
    """kill_when: true once the `nth` distinct name matching `pattern` is present in `folder`."""

    def __init__(self, folder: Path, pattern: str, nth: int = 1, file_text: str | None = None):
        self.folder, self.pattern, self.nth, self.file_text = folder, re.compile(pattern), nth, file_text
        self.seen: set[str] = set()

    def __call__(self) -> bool:
        if self.file_text is not None:  # a text in a file (the attempt's own output)
            with contextlib.suppress(OSError):
                return self.file_text in self.folder.read_text(errors="replace")
            return False
        try:
            names = [n for n in os.listdir(self.folder) if self.pattern.match(n)]
        except OSError:
            return False
        self.seen.update(names)
        return len(self.seen) >= self.nth and bool(names)


class AfterOutput:
    """kill_when for a random moment robust to a busy machine: `seconds` after the process's first output
    (training prints its progress bar or its resume line once imports and data loading are done), scaled
    by how much slower than the reference it reached that point (`ref_first` seconds), clamped to 0.5-4x."""

    def __init__(self, log: Path, seconds: float, ref_first: float):
        self.log, self.seconds, self.ref_first = log, seconds, ref_first
        self.start, self.deadline = time.perf_counter(), None

    def __call__(self) -> bool:
        now = time.perf_counter()
        if self.deadline is None:
            with contextlib.suppress(OSError):
                if self.log.stat().st_size > 0:
                    scale = min(4.0, max(0.5, (now - self.start) / self.ref_first))
                    self.deadline = now + self.seconds * scale
            return False
        return now >= self.deadline


class LogRows:
    """kill_when: true once `log` holds a row of a step that is not a checkpoint step, the `nth` such."""

    def __init__(self, log: Path, nth: int):
        self.log, self.nth = log, nth

    def __call__(self) -> bool:
        try:
            lines = self.log.read_text().splitlines()
            steps = [json.loads(line)["step"] for line in lines if line.endswith("}")]
        except (OSError, ValueError, KeyError):
            return False
        return sum(1 for s in steps if s % CKPT_EVERY) >= self.nth


# ------------------------------------------------------------------------------------------ training
def train_cmd(run: Path, resume: bool) -> list[str]:
    # progress stays on: the "[vae] resumed at step N" line the resume check reads is printed only with it
    return [*VIDWORLD, "train", str(CONFIG), f"run_dir={run}", *TRAIN_OVERRIDES,
            *(["--resume"] if resume else [])]


def checkpoint_steps(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    found = (CKPT.match(n) for n in os.listdir(folder))
    return sorted(int(m.group(1)) for m in found if m and (folder / m.group(0)).is_dir())


def log_steps(path: Path) -> list[int]:
    if not path.is_file():
        return []
    steps = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            steps.append(int(json.loads(line)["step"]))
    return steps


def hidden_names(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        found += [str(Path(dirpath, n).relative_to(root)) for n in dirnames + filenames if n.startswith(".")]
    return sorted(found)


@dataclass(frozen=True)
class TrainState:
    """What a kill left in a run folder: the phase it hit and what a resume must start from."""

    phase: str
    vae_ckpt: int | None
    vae_done: bool
    dyn_ckpt: int | None


def train_state(run: Path) -> TrainState:
    ck = {s: checkpoint_steps(run / s / "checkpoints") for s in STAGES}
    logs = {s: log_steps(run / s / "log.jsonl") for s in STAGES}
    hidden = hidden_names(run)
    vae_done = (run / "vae" / "vae_config.json").is_file()

    def where(stage: str, short: str) -> str:
        c = ck[stage][-1] if ck[stage] else None
        last = logs[stage][-1] if logs[stage] else None
        cut = " window cut" if c is not None and c % LOG_EVERY else ""
        past = f", {sum(1 for s in logs[stage] if c is None or s > c)} row(s) past it" if logs[stage] else ""
        return f"{short} ckpt {c} log {last}{past}{cut}"

    if not (run / "config.yaml").is_file():
        phase = "startup (no config.yaml)"
    elif any(Path(h).name.startswith(".model.") for h in hidden):
        phase = "model/ folder write"
    elif (run / "model").is_dir():
        summary = (run / "train_summary.json").is_file()
        phase = "after model/ write" + ("" if summary else ", no train_summary")
    elif tmp := [h for h in hidden if ".checkpoint_" in h]:
        phase = f"checkpoint save {tmp[0]}"
    elif any(Path(h).name.startswith(".vae.") for h in hidden):
        phase = "vae/ folder write"
    elif ck["stage_dynamics"] or logs["stage_dynamics"]:
        phase = where("stage_dynamics", "dynamics")
    elif vae_done:
        phase = "dynamics start (vae/ written)"
    elif ck["stage_vae"] or logs["stage_vae"]:
        phase = where("stage_vae", "vae")
    else:
        phase = "data loading / stage setup"
    if hidden and not any(w in phase for w in ("write", "save")):
        phase += f" [temps: {', '.join(hidden[:3])}]"
    if len(ck["stage_vae"]) > 2 or len(ck["stage_dynamics"]) > 2:
        phase += f" [>2 checkpoints: vae {ck['stage_vae']} dyn {ck['stage_dynamics']}]"
    return TrainState(phase, ck["stage_vae"][-1] if ck["stage_vae"] else None, vae_done,
                      ck["stage_dynamics"][-1] if ck["stage_dynamics"] else None)


def resume_said(output: str) -> str:
    """What a restart reported: "vae loaded, dynamics @42" (each stage's resume point), or "from scratch"."""
    said = re.findall(r"\[(vae|dynamics)\] (?:resumed at step (\d+)|(loaded) finished stage)", output)
    done = [f"{stage} {'loaded' if loaded else '@' + step}" for stage, step, loaded in said]
    return ", ".join(done) or "from scratch"


def check_resumed(state: TrainState, attempt: Attempt) -> list[str]:
    """The restart after a kill must resume each stage from the newest checkpoint `state` saw."""
    out, errors = attempt.output, []
    vae_msg = re.findall(r"\[vae\] resumed at step (\d+)", out)
    dyn_msg = re.findall(r"\[dynamics\] resumed at step (\d+)", out)
    loaded = "[vae] loaded finished stage" in out
    reached_dyn = bool(dyn_msg) or attempt.rc == 0
    if state.vae_done:
        if vae_msg or (not loaded and attempt.rc == 0):
            errors.append(f"vae/ was complete but restart said {vae_msg or 'nothing'} instead of loading it")
    elif state.vae_ckpt is not None and (vae_msg or attempt.rc == 0) and vae_msg != [str(state.vae_ckpt)]:
        errors.append(f"vae: newest checkpoint {state.vae_ckpt}, restart resumed at {vae_msg or 'none'}")
    elif state.vae_ckpt is None and vae_msg:
        errors.append(f"vae: no checkpoint, yet restart resumed at {vae_msg}")
    if state.dyn_ckpt is not None and reached_dyn and dyn_msg != [str(state.dyn_ckpt)]:
        errors.append(f"dynamics: newest checkpoint {state.dyn_ckpt}, restart resumed at {dyn_msg or 'none'}")
    elif state.dyn_ckpt is None and dyn_msg:
        errors.append(f"dynamics: no checkpoint, yet restart resumed at {dyn_msg}")
    return errors


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def compare_folder(got: Path, ref: Path, label: str, notes: list[str]) -> list[str]:
    """Errors: other files, or a safetensors tensor not bit-identical (dtype, shape, bytes). Other files
    that differ in bytes are added to `notes` (the goal is weights and logs; strict mode fails them too)."""
    import torch

    if not got.is_dir():
        return [f"{label}/ missing"]
    files = {p.relative_to(ref) for p in ref.rglob("*") if p.is_file()}
    have = {p.relative_to(got) for p in got.rglob("*") if p.is_file()}
    errors = [] if files == have else [f"{label}/: files {sorted(map(str, files ^ have))} differ from ref"]
    for rel in sorted(files & have):
        if rel.suffix == ".safetensors":
            a, b = _tensors(got / rel), _tensors(ref / rel)
            if a.keys() != b.keys():
                errors.append(f"{label}/{rel}: tensor names differ")
                continue
            bad = [k for k in a if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape
                   or not torch.equal(a[k].reshape(-1).view(torch.uint8), b[k].reshape(-1).view(torch.uint8))]
            if bad:
                worst = max(((a[k].double() - b[k].double()).abs().max().item() for k in bad
                             if a[k].shape == b[k].shape and a[k].is_floating_point()), default=float("nan"))
                errors.append(f"{label}/{rel}: {len(bad)}/{len(a)} tensors differ "
                              f"(e.g. {bad[0]}, max |diff| {worst:.3g})")
        elif (got / rel).read_bytes() != (ref / rel).read_bytes():
            changed = [line for line in difflib.unified_diff(
                (ref / rel).read_text(errors="replace").splitlines(),
                (got / rel).read_text(errors="replace").splitlines(), lineterm="", n=0)
                if line[:1] in "+-" and line[:3] not in ("+++", "---")]
            notes.append(f"{label}/{rel} differs: {' | '.join(x.strip() for x in changed[:3])[:200]}")
    return errors


def compare_log(got: Path, ref: Path, label: str) -> list[str]:
    if not got.is_file():
        return [f"{label} missing"]
    a, b = got.read_bytes(), ref.read_bytes()
    if a == b:
        return []
    la, lb = a.decode(errors="replace").splitlines(), b.decode(errors="replace").splitlines()
    i = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
    got_line, ref_line = (la[i] if i < len(la) else "<end>"), (lb[i] if i < len(lb) else "<end>")
    where = f"{label} differs from line {i + 1} ({len(la)} vs {len(lb)} lines)"
    return [f"{where}: {got_line:.120} vs ref {ref_line:.120}"]


def compare_run(run: Path, ref: Path, notes: list[str]) -> list[str]:
    """Errors of a finished run against the reference; differences outside weights and logs go to `notes`."""
    errors = compare_folder(run / "model", ref / "model", "model", notes)
    errors += compare_folder(run / "vae", ref / "vae", "vae", notes)
    for stage in STAGES:
        errors += compare_log(run / stage / "log.jsonl", ref / stage / "log.jsonl", f"{stage}/log.jsonl")
        root, ref_root = run / stage / "checkpoints", ref / stage / "checkpoints"
        names, ref_names = sorted(os.listdir(root)) if root.is_dir() else [], sorted(os.listdir(ref_root))
        if names != ref_names:
            errors.append(f"{stage}/checkpoints holds {names}, the reference {ref_names}")
        for n in set(names) & set(ref_names):
            files = sorted(os.listdir(root / n)) if (root / n).is_dir() else None
            if files != sorted(os.listdir(ref_root / n)):
                errors.append(f"{stage}/checkpoints/{n} incomplete: holds {files}")
        for n in set(names) - set(ref_names):
            if CKPT.match(n) and (root / n).is_dir():
                errors.append(f"{stage}/checkpoints/{n} (extra) holds {sorted(os.listdir(root / n))}")
        if ref_names and ref_names[-1] in names:
            errors += compare_folder_file(root / ref_names[-1] / "model.safetensors",
                                          ref_root / ref_names[-1] / "model.safetensors",
                                          f"{stage}/checkpoints/{ref_names[-1]}")
    if hidden := hidden_names(run):
        errors.append(f"hidden names left: {hidden[:5]}")
    if not (run / "train_summary.json").is_file():
        errors.append("train_summary.json missing")
    return errors


def compare_folder_file(got: Path, ref: Path, label: str) -> list[str]:
    import torch

    if not got.is_file():
        return [f"{label}/{got.name} missing"]
    a, b = _tensors(got), _tensors(ref)
    same = a.keys() == b.keys() and all(torch.equal(a[k].reshape(-1).view(torch.uint8),
                                                    b[k].reshape(-1).view(torch.uint8)) for k in a)
    return [] if same else [f"{label}/{got.name}: weights differ from the reference's"]


@dataclass
class TrainTrial:
    name: str
    # per kill: (delay after start or None, factory(run dir, attempt log) -> kill_when or None, extra wait
    # after kill_when holds, description)
    kills: list[tuple[float | None, Callable[[Path, Path], Callable[[], bool]] | None, float, str]]


def timeline(run: Path, attempt_log: Path) -> dict[str, float]:
    """Run the reference, recording when each output first appears (seconds after start)."""
    marks = {"config.yaml": run / "config.yaml", "vae ckpt 1": run / "stage_vae" / "checkpoints",
             "vae/ written": run / "vae", "dyn ckpt 1": run / "stage_dynamics" / "checkpoints",
             "model/ written": run / "model", "train_summary": run / "train_summary.json"}
    seen: dict[str, float] = {}
    t0 = time.perf_counter()

    def watch() -> bool:
        if "first output" not in seen and attempt_log.is_file() and attempt_log.stat().st_size > 0:
            seen["first output"] = time.perf_counter() - t0
        for k, p in marks.items():
            if k not in seen and p.exists():
                seen[k] = time.perf_counter() - t0
        return False

    a = run_process(train_cmd(run, False), attempt_log, kill_when=watch, poll=0.005)
    if a.rc != 0:
        raise SystemExit(f"reference training failed (rc {a.rc}):\n{a.output[-3000:]}")
    seen["exit"] = a.seconds
    return seen


def plan_train(rng: random.Random, n: int, tl: dict[str, float], targeted: bool) -> list[TrainTrial]:
    """Random trials: a kill `d` reference-seconds after the attempt's first output (AfterOutput), `d`
    stratified over the whole training (first output .. exit), the last four aimed at the vae/ and model/
    folder writes; one trial killed during start-up (a plain delay); every third killed again after its
    first resume. Then, with `targeted`, kills at moments seen on disk."""
    first, end = tl["first output"], tl["exit"]
    span = end - first
    n_late = min(4, max(0, n - 4))
    n_spread = n - n_late - 1

    def after(d: float):
        return lambda run, log: AfterOutput(log, d, first)

    trials = [TrainTrial("startup", [(rng.uniform(1.0, first), None, 0.0, "start-up delay")])] if n else []
    for i in range(n - 1):
        if i < n_spread:  # stratified over the whole run
            d, kind = (i + rng.random()) / n_spread * span, "random"
        elif (i - n_spread) % 2 == 0:  # late: the model/ folder write and the process end
            d, kind = rng.uniform(tl["model/ written"] - first - 0.4, span + 0.05), "late-model"
        else:  # the vae/ folder write and the start of the dynamics stage
            at = tl["vae/ written"] - first
            d, kind = rng.uniform(at - 0.3, at + 0.3), "late-vae"
        kills = [(None, after(d), 0.0, f"out+{d:.2f}s")]
        if i % 3 == 1:  # a second kill during the first resume
            d2 = rng.uniform(0.0, span)
            kills.append((None, after(d2), 0.0, f"out+{d2:.2f}s"))
        trials.append(TrainTrial(kind, kills))
    if targeted:
        def ckpt_temp(stage: str, k: int):
            return lambda run, log: Appears(run / stage / "checkpoints", r"^\.checkpoint_\d+\.tmp", k)

        def temp(name: str):
            return lambda run, log: Appears(run, rf"^\.{name}\.tmp")

        k1, k2 = rng.randint(2, VAE_STEPS // CKPT_EVERY), rng.randint(2, DYN_STEPS // CKPT_EVERY)
        w = rng.random()
        final = f"checkpoint_{DYN_STEPS}"
        trials += [
            TrainTrial("vae-ckpt-save", [(None, ckpt_temp("stage_vae", k1), 0.02 * w,
                                          f"in vae ckpt save #{k1}")]),
            TrainTrial("dyn-ckpt-save", [(None, ckpt_temp("stage_dynamics", k2), 0.03 * w,
                                          f"in dyn ckpt save #{k2}")]),
            TrainTrial("vae-folder", [(None, temp("vae"), 0.0, "vae/ temp seen")]),
            TrainTrial("model-folder", [(None, temp("model"), 0.01 * w, "model/ temp seen")]),
            TrainTrial("final-ckpt", [(None, lambda run, log: Appears(run / "stage_dynamics" / "checkpoints",
                                                                      f"^{final}$"),
                                       0.0, f"{final} renamed (prune)")]),
            TrainTrial("log-past-ckpt", [
                (None, lambda run, log: LogRows(run / "stage_dynamics" / "log.jsonl", 3), 0.0,
                 "3rd dyn log row off the ckpt grid"),
                (None, lambda run, log: Appears(log, "", file_text="[dynamics] resumed"), 0.05 + 0.3 * w,
                 "just after resume")]),
        ]
    return trials


def run_train_trial(trial: TrainTrial, run: Path, ref: Path, strict: bool = False) -> tuple[bool, str]:
    parts, errors, attempt_no = [], [], 0
    resume = False
    kills = list(trial.kills)
    state: TrainState | None = None
    while True:
        log = run.parent / f"{run.name}.attempt{attempt_no}.log"
        kill = kills.pop(0) if kills else None
        if kill is None:
            a = run_process(train_cmd(run, resume), log)
        else:
            delay, factory, wait, _ = kill
            trigger = factory(run, log) if factory else None
            # moments seen on disk are busy-polled (a prune lasts ~1 ms); timed kills poll gently
            poll = 0.0 if trigger is not None and not isinstance(trigger, AfterOutput) else 0.0005
            a = run_process(train_cmd(run, resume), log, kill_after=delay, kill_when=trigger, extra_wait=wait,
                            poll=poll)
        if state is not None:
            errors += [f"restart {attempt_no}: {e}" for e in check_resumed(state, a)]
            parts.append(f"{{restart: {resume_said(a.output)}}}")
        attempt_no += 1
        if a.killed_at is None:
            if kill is not None:
                parts.append(f"[{kill[3]}: not killed, run ended first]")
            if a.rc != 0:
                errors.append(f"attempt {attempt_no} exited {a.rc}: {a.output.strip().splitlines()[-1:]}")
            break
        state = train_state(run)
        parts.append(f"[kill@{a.killed_at:.2f}s ({kill[3]}): {state.phase}]")
        resume = True
        if attempt_no > 5:
            errors.append("more than 5 attempts")
            break
    notes: list[str] = []
    if not errors:
        errors = compare_run(run, ref, notes)
    if strict:
        errors, notes = errors + notes, []
    verdict = " -> IDENTICAL (weights, logs)" if not errors else " -> FAIL: " + "; ".join(errors)
    return not errors, " ".join(parts) + verdict + (f" [NOTE: {'; '.join(notes)}]" if notes else "")


# ------------------------------------------------------------------------------------------ collection
COLLECT_STEPS = 300


def collect_cmd(out: Path, seed: int, steps: int = COLLECT_STEPS) -> list[str]:
    return [*VIDWORLD, "collect", "--env", "CartPole-v1", "--steps", str(steps), "--frame-size", "16",
            "--out", str(out), "--seed", str(seed), "--no-progress"]


_EP_ANY = re.compile(r"^\.?ep_(\d+)[.]")


@dataclass
class StoreSnapshot:
    """A store folder right after a kill: what is on disk, what the manifest lists."""

    files: dict[str, str] = field(default_factory=dict)  # name in episodes/ -> sha256 (complete files)
    other: list[str] = field(default_factory=list)  # every other name (temps, root files)
    listed: list[str] = field(default_factory=list)
    next_episode: int = 0
    has_manifest: bool = False

    @property
    def numbers(self) -> set[int]:
        nums = {int(m.group(1)) for n in [*self.files, *self.other] if (m := _EP_ANY.match(n))}
        nums |= {int(n[3:]) for n in self.listed}
        return nums | set(range(self.next_episode))


def snapshot(root: Path) -> StoreSnapshot:
    s = StoreSnapshot()
    ep = root / "episodes"
    for n in sorted(os.listdir(ep)) if ep.is_dir() else []:
        if re.fullmatch(r"ep_\d+\.(mp4|npz)", n):
            s.files[n] = hashlib.sha256((ep / n).read_bytes()).hexdigest()
        else:
            s.other.append(n)
    top = os.listdir(root) if root.is_dir() else []
    s.other += [n for n in top if n not in ("episodes", "manifest.json")]
    with contextlib.suppress(OSError, ValueError):
        m = json.loads((root / "manifest.json").read_text())
        s.has_manifest = True
        s.listed = [e["name"] for e in m["episodes"]]
        s.next_episode = int(m.get("next_episode", 0))
    return s


def collect_phase(s: StoreSnapshot, finished: bool) -> str:
    if finished:
        return "finished before the kill"
    if not s.has_manifest:
        return "startup (no manifest)"
    orphans = sorted({n.split(".")[0] for n in s.files} - set(s.listed))
    bits = [f"{len(s.listed)} listed"]
    for o in orphans:
        both = f"{o}.mp4" in s.files and f"{o}.npz" in s.files
        has = "mp4+npz" if both else "mp4 only" if f"{o}.mp4" in s.files else "npz only"
        bits.append(f"orphan {o} ({has})")
    if s.other:
        bits.append(f"temps {s.other[:3]}")
    return ", ".join(bits)


def _episodes_equal(a, b) -> bool:
    import numpy as np

    if a.frames.shape != b.frames.shape or not np.array_equal(a.frames, b.frames):
        return False
    for key in ("actions", "rewards", "terminated", "truncated", "state", "frame_sums"):
        x, y = getattr(a.arrays, key), getattr(b.arrays, key)
        if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y)):
            return False
    return True


def check_store(root: Path, ref_root: Path, s: StoreSnapshot,
                steps: int = COLLECT_STEPS) -> tuple[list[str], str]:
    """Errors of a collected-again store, and a note on how it compares with the uninterrupted one."""
    from vidworld.data.store import EpisodeStore

    errors = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = EpisodeStore.open(root)
        ref = EpisodeStore.open(ref_root)
    errors += [f"open warned: {str(w.message)[:200]}" for w in caught]
    if store.skipped:
        errors.append(f"skipped episodes: {store.skipped[:3]}")
    eps = []
    for i in range(len(store)):
        try:
            eps.append(store.load_episode(i))
        except Exception as e:  # noqa: BLE001 - report any failure to load as a finding
            errors.append(f"episode {store.episodes[i].name} does not load: {type(e).__name__}: {e}")
    names = store.listed_names
    if len(set(names)) != len(names):
        errors.append(f"duplicate names in manifest: {names}")
    root_names = sorted(os.listdir(root))
    if root_names != ["episodes", "manifest.json"]:
        errors.append(f"store folder holds {root_names}")
    expected = {f"{n}.{x}" for n in names for x in ("mp4", "npz")}
    on_disk = set(os.listdir(root / "episodes"))
    if on_disk != expected:
        errors.append(f"episodes/: unlisted {sorted(on_disk - expected)[:5]}, "
                      f"missing {sorted(expected - on_disk)[:5]}")
    seen, before = s.numbers, set()
    top = max(seen, default=-1)
    for n in names:
        k = int(n[3:])
        if k > top:
            continue
        before.add(n)
        pre = [f for f in (f"{n}.mp4", f"{n}.npz") if f in s.files]
        if n not in s.listed and len(pre) < 2:
            errors.append(f"{n} reuses a number seen after the kill (as {pre or 'a temp/burnt number'})")
        for f in pre:
            if (root / "episodes" / f).is_file() and \
                    hashlib.sha256((root / "episodes" / f).read_bytes()).hexdigest() != s.files[f]:
                errors.append(f"episodes/{f} was rewritten after the kill")
    for n in {f.split(".")[0] for f in s.files} - set(s.listed):  # complete orphans must be recovered
        if f"{n}.mp4" in s.files and f"{n}.npz" in s.files and n not in names:
            errors.append(f"complete orphan {n} (mp4+npz on disk after the kill) was discarded")
    ref_by_name = {info.name: i for i, info in enumerate(ref.episodes)}
    for ep in eps:
        if ep.name in before:
            if ep.name not in ref_by_name:
                errors.append(f"{ep.name} survived the kill but the uninterrupted run has no such episode")
            elif not _episodes_equal(ep, ref.load_episode(ref_by_name[ep.name])):
                errors.append(f"{ep.name} survived the kill but differs from the uninterrupted run's")
    new = [e for e in store.episodes if e.name not in before]
    if sum(e.length for e in new) != steps:
        errors.append(f"the rerun wrote {sum(e.length for e in new)} steps, expected {steps}")
    equal = [e.name for e in store.episodes] == [e.name for e in ref.episodes] and all(
        _episodes_equal(a, ref.load_episode(i)) for i, a in enumerate(eps))
    kept = sum(e.length for e in store.episodes if e.name in before)
    note = ("equal to uninterrupted" if equal else
            f"not equal to uninterrupted (by design: kept {len(before)} ep/{kept} steps = ref prefix, rerun "
            f"appended {len(new)} ep/{steps} steps from {new[0].name if new else '-'}; "
            f"{len(store)} ep vs ref {len(ref)})")
    return errors, note


def run_collect_trial(i: int, kind: str, delay: float | None, factory, wait: float, work: Path,
                      seed: int, steps: int = COLLECT_STEPS) -> tuple[bool, str]:
    ref, out = work / f"collect{i:02d}_ref", work / f"collect{i:02d}"
    a = run_process(collect_cmd(ref, seed, steps), work / f"{ref.name}.log")
    if a.rc != 0:
        return False, f"reference collect failed: {a.output[-500:]}"
    k = run_process(collect_cmd(out, seed, steps), work / f"{out.name}.attempt0.log", kill_after=delay,
                    kill_when=factory(out) if factory else None, extra_wait=wait)
    s = snapshot(out)
    phase = collect_phase(s, k.killed_at is None)
    r = run_process(collect_cmd(out, seed, steps), work / f"{out.name}.attempt1.log")
    repair = re.findall(r"repaired what an interrupted write left:([^\n]*)", r.output)
    head = (f"seed {seed} {kind}: kill@{k.killed_at if k.killed_at is None else round(k.killed_at, 3)}s "
            f"[{phase}]{f' ({k.survivors} child survived)' if k.survivors else ''}; rerun repair: "
            f"{repair[0].strip()[:160] if repair else 'none'}")
    if r.rc != 0:
        return False, f"{head} -> FAIL: rerun exited {r.rc}: {r.output.strip().splitlines()[-1:]}"
    errors, note = check_store(out, ref, s, steps)
    return not errors, f"{head} -> {'CLEAN' if not errors else 'FAIL: ' + '; '.join(errors)}; {note}"


def plan_collect(rng: random.Random, n: int, duration: float, targeted: bool) -> list[tuple]:
    def ep(pat: str, k: int):
        return lambda out: Appears(out / "episodes", pat, k)

    plans = [("random", 0.1 + (i + rng.random()) / n * (duration - 0.1), None, 0.0) for i in range(n)]
    if targeted:
        plans += [("mp4-temp", None, ep(r"^\.ep_\d+\.tmp.*\.mp4$", rng.randint(2, 6)), 0.01 * rng.random()),
                  ("npz-temp", None, ep(r"^\.ep_\d+\.tmp.*\.npz$", rng.randint(2, 6)), 0.0),
                  ("orphan-mp4", None, ep(r"^ep_\d+\.mp4$", rng.randint(2, 6)), 0.0),
                  ("orphan-complete", None, ep(r"^ep_\d+\.npz$", rng.randint(2, 6)), 0.0),
                  ("create", None, lambda out: Appears(out, r"^episodes$"), 0.0)]  # before its manifest
    return plans


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    p.add_argument("--train-trials", type=int, default=15, help="random-moment training trials (>= 15)")
    p.add_argument("--collect-trials", type=int, default=6, help="random-moment collect trials")
    p.add_argument("--targeted", action=argparse.BooleanOptionalAction, default=True,
                   help="also kill at moments seen on disk (checkpoint/model temps, orphans, ...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", help="work folder (default: a new temp dir, deleted unless --keep)")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--live-code", action="store_true",
                   help="run the working tree as it is at each start, not a snapshot taken at the beginning")
    p.add_argument("--only", choices=("train", "collect"))
    p.add_argument("--strict", action="store_true",
                   help="a non-weight file under model/ or vae/ that differs (e.g. a config) fails the trial")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(args.work or tempfile.mkdtemp(prefix="kill_resume_"))
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    if not args.live_code:
        snapshot_code(work / "code")
    print(f"work folder {work}; vidworld = {' '.join(VIDWORLD)}", flush=True)
    train_ok = train_n = collect_ok = collect_n = noted = 0
    try:
        if args.only != "collect":
            ref, control = work / "train_ref", work / "train_control"
            tl = timeline(ref, work / "train_ref.log")
            marks = ", ".join(f"{k} {v:.2f}s" for k, v in tl.items())
            print(f"train reference timeline: {marks}", flush=True)
            a = run_process(train_cmd(control, False), work / "train_control.log")
            notes: list[str] = []
            errs = [f"exit {a.rc}"] if a.rc != 0 else compare_run(control, ref, notes) + notes
            print(f"train control (2nd uninterrupted run, {a.seconds:.1f}s): "
                  f"{'IDENTICAL' if not errs else 'DIFFERENT: ' + '; '.join(errs)}", flush=True)
            if errs:
                print("uninterrupted runs differ: the comparison is meaningless; stopping")
                return 1
            for i, trial in enumerate(plan_train(rng, args.train_trials, tl, args.targeted)):
                t0 = time.perf_counter()
                ok, line = run_train_trial(trial, work / f"train{i:02d}", ref, args.strict)
                noted += "[NOTE:" in line
                train_n += 1
                train_ok += ok
                took = time.perf_counter() - t0
                print(f"train   #{i:02d} {trial.name:13s} {took:5.1f}s {line}", flush=True)
        if args.only != "train":
            probe = work / "collect_probe"
            a = run_process(collect_cmd(probe, 12345), work / "collect_probe.log")
            if a.rc != 0:
                raise SystemExit(f"collect failed:\n{a.output[-2000:]}")
            print(f"collect reference duration {a.seconds:.2f}s", flush=True)
            for i, (kind, delay, factory, wait) in enumerate(plan_collect(rng, args.collect_trials, a.seconds,
                                                                           args.targeted)):
                t0 = time.perf_counter()
                ok, line = run_collect_trial(i, kind, delay, factory, wait, work, seed=100 + i)
                collect_n += 1
                collect_ok += ok
                print(f"collect #{i:02d} {time.perf_counter() - t0:4.1f}s {line}", flush=True)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    if noted:
        print(f"note: in {noted}/{train_n} train trials a non-weight file under model/ differs "
              "(see NOTE above; --strict fails them)")
    print(f"train: {train_ok}/{train_n} identical; collect: {collect_ok}/{collect_n} clean "
          f"({time.perf_counter() - t_start:.0f} s)")
    return 0 if (train_ok == train_n and collect_ok == collect_n) else 1


if __name__ == "__main__":
    sys.exit(main())
