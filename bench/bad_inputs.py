"""Bad-input battery (not a test): every `vidworld` command fed inputs a person gets wrong. Prints a table.

    python bench/bad_inputs.py [--all] [--only SUBSTRING] [--workdir DIR] [--timeout 120] [-v]

The bar (house style 11): bad input gets ONE line "vidworld <cmd>: error: ..." naming the file/key/value
and what was expected; never a traceback, never an exit 0 (a silent wrong result). Each case runs the real
CLI as a subprocess, one at a time (the machine is shared; never in parallel), against a tiny real world
built first in a temp folder: a 16x16 CartPole dataset (`vidworld collect`), a model trained on it with
configs/tiny/diffusion.yaml (`vidworld train`, seconds), a 3-action Acrobot dataset, a 32x32 CartPole
dataset, a text file and three valid context images. The cases are in bench/bad_input_cases.py; the
default set (131 cases) takes 10-15 minutes on 2 busy cores; `--all` adds 134 variations.

Each case records the exit code, whether stderr holds a "Traceback", how many stderr lines the final error
spans (from the last "vidworld <cmd>: error:" line on), and its verdict:
  ok         exit code != 0, no traceback, a one-line error (naming what the case's `expect` asks for)
  TRACEBACK  a bad input reached code that did not check it
  SILENT     exit code 0 on bad input: accepted, and something was produced from it
  MULTILINE  the final error spans more than one line
  TIMEOUT    still running after --timeout seconds (for `play`: it started serving a bad input)
  DAMAGED    the command failed but changed a file that was already on disk
  VAGUE      one line, but it does not name the flag/key/file/value the case expects (reported, not failed)
Exit code 1 on any TRACEBACK, SILENT, MULTILINE, TIMEOUT or DAMAGED.

`--workdir DIR` keeps the world and every case folder in DIR (a rerun reuses the world if DIR/.ready exists).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bad_input_cases import CASES, TINY, Case  # bench/ is the script's folder, first on sys.path

VIDWORLD = str(Path(sys.executable).with_name("vidworld"))
ERROR_LINE = re.compile(r"^vidworld(?: [\w-]+)?: error: ")
FAILING = ("TRACEBACK", "SILENT", "MULTILINE", "TIMEOUT", "DAMAGED")


# ----------------------------------------------------------------------------------------- the tiny world
@dataclass
class World:
    """Paths of the shared, valid ingredients; `case_dir(name)` gives each case its own scratch folder."""

    root: Path
    data: Path = field(init=False)  # CartPole-v1, 16x16, 60 steps
    acrobot: Path = field(init=False)  # Acrobot-v1 (3 actions), 16x16, 3 episodes of 10 steps
    data32: Path = field(init=False)  # CartPole-v1, 32x32
    run: Path = field(init=False)  # a finished tiny training run (config.yaml, checkpoints, model/)
    file: Path = field(init=False)  # a regular text file (to put paths "under a file")
    images: list[Path] = field(init=False)  # 3 valid 16x16 RGB context images

    def __post_init__(self) -> None:
        r = self.root
        self.data, self.acrobot, self.data32 = r / "data", r / "acrobot", r / "data32"
        self.run, self.file = r / "run", r / "notes.txt"
        self.images = [r / f"ctx{i}.png" for i in range(3)]

    @property
    def model(self) -> Path:
        return self.run / "model"

    def case_dir(self, index: int) -> Path:
        # numbered, not named after the case: a path holding "--horizon" would satisfy its own `expect`
        d = self.root / "cases" / f"c{index:03d}"
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        return d


def _run_ok(argv: list[str], cwd: Path) -> None:
    r = subprocess.run([VIDWORLD, *argv], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"setup failed: vidworld {' '.join(argv)}\n{r.stderr}")


def build_world(root: Path) -> World:
    w = World(root)
    ready = root / ".ready"
    if ready.is_file():
        return w
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    common = ["--no-progress", "--frame-size", "16"]
    _run_ok(["collect", "--env", "CartPole-v1", "--steps", "60", "--out", str(w.data), *common], root)
    _run_ok(["collect", "--env", "Acrobot-v1", "--steps", "30", "--max-episode-steps", "10", "--out",
             str(w.acrobot), *common], root)  # 3 episodes: enough for a train/val split
    _run_ok(["collect", "--env", "CartPole-v1", "--steps", "30", "--out", str(w.data32), "--no-progress",
             "--frame-size", "32"], root)
    _run_ok(["train", TINY, f"run_dir={w.run}", f"data.path={w.data}", "--no-progress"], root)
    w.file.write_text("just some notes, not a folder\n")
    from vidworld.data.store import EpisodeStore
    import imageio.v3 as iio

    frames = EpisodeStore.open(w.data).load_episode(0).frames
    for i, path in enumerate(w.images):
        iio.imwrite(path, frames[i])
    ready.write_text("ok")
    print(f"world ready in {time.perf_counter() - t0:.0f} s: {root}")
    return w


# ------------------------------------------------------------------------------------------------ runner
@dataclass(frozen=True)
class Result:
    case: Case
    argv: list[str]
    code: int | None  # None: timed out
    traceback: bool
    error_lines: int
    verdict: str
    error: str
    seconds: float


def _digest(paths: list[Path]) -> dict[Path, str | None]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None for p in paths}


def final_error(stderr: str) -> tuple[int, str]:
    """(lines of the final error, the line to show). The final error starts at the last "vidworld <cmd>:
    error:" line (argparse's usage lines before it are not part of it); without one, at the last
    "Traceback" (shown: its last line); else it is all of stderr."""
    lines = [ln for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    starts = [i for i, ln in enumerate(lines) if ERROR_LINE.match(ln)]
    if starts:
        tail = lines[starts[-1]:]
        return len(tail), tail[0]
    starts = [i for i, ln in enumerate(lines) if ln.startswith("Traceback")] or [0]
    tail = lines[starts[-1]:]
    return len(tail), (tail[-1] if tail else "")


def run_case(index: int, c: Case, w: World, timeout: float) -> Result:
    d = w.case_dir(index)
    try:
        argv = c.argv(w, d)
    except Exception as e:  # the battery's own bug: report it, keep going
        return Result(c, [], None, False, 0, "SETUP", f"building the case failed: {type(e).__name__}: {e}", 0.0)
    kept = _digest(c.keep(w, d)) if c.keep else {}
    env = {k: v for k, v in os.environ.items() if k != "VIDWORLD_TRACEBACK"}
    env.update(SDL_VIDEODRIVER="dummy", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    try:
        p = subprocess.run([VIDWORLD, *argv], cwd=d, capture_output=True, text=True, timeout=timeout, env=env)
        code, stderr = p.returncode, p.stderr
    except subprocess.TimeoutExpired as e:
        err = e.stderr or ""
        code, stderr = None, err.decode(errors="replace") if isinstance(err, bytes) else err
    seconds = time.perf_counter() - t0
    tb = "Traceback" in stderr
    n, error = final_error(stderr)
    damaged = [str(p) for p, h in _digest(list(kept)).items() if h != kept[p]]
    if code is None:
        verdict = "TIMEOUT"
    elif tb:
        verdict = "TRACEBACK"
    elif code == 0:
        verdict = "SILENT"
    elif damaged:
        verdict, error = "DAMAGED", f"changed {damaged}; {error}"
    elif n != 1:
        verdict = "MULTILINE"
    elif c.expect and not re.search(c.expect, error, re.IGNORECASE):
        verdict = "VAGUE"
    else:
        verdict = "ok"
    return Result(c, argv, code, tb, n, verdict, error, seconds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="also the extra variations (217 cases in all)")
    ap.add_argument("--only", help="only the cases whose 'command: name' contains this (case-insensitive)")
    ap.add_argument("--workdir", help="keep the world and the case folders here (reused on a rerun)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per case (default 120)")
    ap.add_argument("--play-timeout", type=float, default=40.0, help="seconds per `play` case (default 40)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each case's command line")
    args = ap.parse_args()

    cases = [c for c in CASES if (args.all or not c.extra)
             and (not args.only or args.only.lower() in f"{c.command}: {c.name}".lower())]
    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="vidworld-bad-inputs-")
    root = Path(args.workdir or tmp.name).resolve()
    t0 = time.perf_counter()
    world = build_world(root)
    results = []
    width = max(len(c.name) for c in cases)
    print(f"| {'case':<{width}} | command | exit | verdict | s | error (first line) |")
    print(f"|{'-' * (width + 2)}|---|---|---|---|---|")
    for i, c in enumerate(cases):
        r = run_case(i, c, world, args.play_timeout if c.command == "play" else args.timeout)
        results.append(r)
        shown = r.error if len(r.error) <= 120 else r.error[:117] + "..."
        code = "-" if r.code is None else r.code
        print(f"| {c.name:<{width}} | {c.command} | {code} | {r.verdict} | {r.seconds:.1f} | {shown} |", flush=True)
        if args.verbose:
            print(f"    $ vidworld {' '.join(r.argv)}")
    count = lambda *v: sum(r.verdict in v for r in results)  # noqa: E731
    tracebacks = sum(r.traceback for r in results)
    silent = sum(r.code == 0 for r in results)
    multi = sum(r.code not in (0, None) and not r.traceback and r.error_lines != 1 for r in results)
    print()
    print(f"{len(results)} cases: {tracebacks} tracebacks, {silent} silent successes, {multi} multi-line errors")
    print(f"also: {count('TIMEOUT')} timeouts, {count('DAMAGED')} damaged files, {count('VAGUE')} vague errors, "
          f"{count('SETUP')} broken cases; {time.perf_counter() - t0:.0f} s in all")
    for r in results:
        if r.verdict != "ok":
            print(f"  {r.verdict}: {r.case.command}: {r.case.name}\n    $ vidworld {' '.join(r.argv)}\n    {r.error}")
    if tmp is not None:
        tmp.cleanup()
    return 1 if count(*FAILING, "SETUP") else 0


if __name__ == "__main__":
    sys.exit(main())
