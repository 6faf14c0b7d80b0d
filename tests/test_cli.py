"""vidworld.cli: overrides and flags in any order; user-facing errors are one line, bugs keep tracebacks."""

from __future__ import annotations

import argparse
import errno
import sys
import types

import pytest

from vidworld import cli
from vidworld.config import ConfigError


@pytest.fixture
def fake_command(monkeypatch):
    """A `vidworld fake` command shaped like `vidworld train` whose run() raises what the test asks for."""
    module = types.ModuleType("vidworld_fake_command")
    module.seen = []
    module.raise_ = None

    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("config")
        p.add_argument("overrides", nargs="*")
        p.add_argument("--resume", action="store_true")
        p.add_argument("--out", default=None)

    def run(args: argparse.Namespace) -> int:
        module.seen.append(args)
        if module.raise_ is not None:
            raise module.raise_
        return 0

    module.add_arguments, module.run = add_arguments, run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli.COMMANDS, "fake", (module.__name__, "a test command"))
    monkeypatch.delenv("VIDWORLD_TRACEBACK", raising=False)
    return module


@pytest.mark.parametrize(
    "argv",
    [
        ["c.yaml", "a=1", "b=2", "--resume", "--out", "o"],
        ["c.yaml", "--resume", "a=1", "b=2", "--out", "o"],  # used to be "unrecognized arguments: a=1 b=2"
        ["--resume", "c.yaml", "a=1", "--out", "o", "b=2"],
        ["--out", "o", "c.yaml", "a=1", "--resume", "b=2"],
    ],
)
def test_overrides_and_flags_in_any_order(fake_command, argv):
    assert cli.main(["fake", *argv]) == 0
    args = fake_command.seen[-1]
    assert (args.config, args.overrides, args.resume, args.out) == ("c.yaml", ["a=1", "b=2"], True, "o")


def test_the_real_train_and_demo_parsers_take_overrides_after_flags():
    _, p = cli.command_parser("train")
    args = cli.parse_command_args(p, ["cfg.yaml", "--resume", "run_dir=x", "--no-progress", "train.seed=1"])
    assert (args.config, args.resume, args.no_progress) == ("cfg.yaml", True, True)
    assert args.overrides == ["run_dir=x", "train.seed=1"]
    _, p = cli.command_parser("demo")
    args = cli.parse_command_args(p, ["--no-progress", "train.seed=1", "--config", "x.yaml", "run_dir=y"])
    assert (args.config, args.overrides) == ("x.yaml", ["train.seed=1", "run_dir=y"])


def test_unknown_flags_are_still_usage_errors(fake_command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["fake", "c.yaml", "--bogus", "a=1"])
    assert info.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def _not_a_directory() -> OSError:
    try:
        open(__file__ + "/x.yaml")  # a path under a regular file: a real NotADirectoryError
    except OSError as e:
        return e
    raise AssertionError("expected NotADirectoryError")


@pytest.mark.parametrize(
    "error, line",
    [
        (ValueError("bad frame shape"), "vidworld fake: error: bad frame shape"),
        (ConfigError("config key 'train.vae_steps': must be >= 1, got 0"),
         "vidworld fake: error: config key 'train.vae_steps': must be >= 1, got 0"),
        (FileNotFoundError("model folder not found: m"), "vidworld fake: error: model folder not found: m"),
        (_not_a_directory(), f"vidworld fake: error: Not a directory: {__file__}/x.yaml"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "runs/x"),
         "vidworld fake: error: Is a directory: runs/x"),
        (PermissionError(errno.EACCES, "Permission denied", "/root/out"),
         "vidworld fake: error: Permission denied: /root/out"),
        (OSError(errno.ENOSPC, "No space left on device", "runs/x/model.pt"),
         "vidworld fake: error: No space left on device: runs/x/model.pt"),
        (FileExistsError(errno.EEXIST, "File exists", "a", None, "b"),
         "vidworld fake: error: File exists: a -> b"),
        (ValueError("first line\n  second line"), "vidworld fake: error: first line second line"),
    ],
)
def test_user_facing_errors_are_one_line_and_exit_2(fake_command, capsys, error, line):
    fake_command.raise_ = error
    assert cli.main(["fake", "c.yaml"]) == 2
    err = capsys.readouterr().err
    assert err == line + "\n"


def test_ctrl_c_is_one_line_and_exit_130(fake_command, capsys):
    fake_command.raise_ = KeyboardInterrupt()
    try:
        code = cli.main(["fake", "c.yaml"])
    except KeyboardInterrupt:  # would otherwise stop the whole pytest session
        pytest.fail("Ctrl-C escaped main() as a traceback")
    assert code == 130
    assert capsys.readouterr().err == "vidworld fake: interrupted\n"


@pytest.mark.parametrize("bug", [TypeError("unsupported operand"), AttributeError("no attribute 'x'"),
                                 RuntimeError("shape mismatch"), KeyError("x")])
def test_bugs_keep_their_traceback(fake_command, bug):
    fake_command.raise_ = bug
    with pytest.raises(type(bug)):
        cli.main(["fake", "c.yaml"])


def test_vidworld_traceback_env_shows_the_traceback_of_a_user_error(fake_command, monkeypatch):
    fake_command.raise_ = ValueError("bad")
    monkeypatch.setenv("VIDWORLD_TRACEBACK", "1")
    with pytest.raises(ValueError, match="bad"):
        cli.main(["fake", "c.yaml"])


def test_train_with_a_bad_value_after_a_flag_stops_at_once_with_one_line(capsys, monkeypatch):
    # items together on the real command: flag before override, range check, one-line error, no training
    monkeypatch.delenv("VIDWORLD_TRACEBACK", raising=False)
    assert cli.main(["train", "configs/demo.yaml", "--no-progress", "train.log_every=0"]) == 2
    err = capsys.readouterr().err
    assert err == "vidworld train: error: config key 'train.log_every': must be >= 1, got 0\n"
