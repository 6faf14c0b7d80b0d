"""`vidworld <command>`: one thin dispatcher; each command lives in the module that owns it.

A command module exposes `add_arguments(parser)` and `run(args) -> int | None`.

Positional `key.sub=value` overrides and flags may come in any order (`vidworld train CONFIG --resume
run_dir=x`): a command's arguments are parsed with argparse's intermixed parsing.

Exit codes: 0 success; 2 a user-facing error, printed as ONE line "vidworld <cmd>: error: ..." (bad
config or argument values, missing/unwritable files and folders: ValueError and OSError); 130 interrupted
(Ctrl-C). Anything else (TypeError, AttributeError, ... inside the library) is a bug and keeps its
traceback; set VIDWORLD_TRACEBACK=1 to get the traceback of a user-facing error too.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("vidworld.demo", "collect, train, evaluate and plan on CartPole pixels, end to end"),
    "collect": ("vidworld.data.collect", "collect episodes from a real gymnasium env into an episode store"),
    "train": ("vidworld.train.run", "train a latent video diffusion world model (accelerate)"),
    "eval-wm": ("vidworld.eval.run", "evaluate a world model on held-out episodes (PSNR/SSIM vs horizon, ...)"),
    "rollout": ("vidworld.eval.rollout", "write an imagined video for a context and an action sequence"),
    "plan": ("vidworld.planning.run", "plan with a world model in the real env and report returns"),
}

EXIT_USER_ERROR = 2  # argparse's own code for bad usage
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidworld", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def command_parser(name: str) -> tuple[ModuleType, argparse.ArgumentParser]:
    """The command's module (imported) and its own parser, `prog` = "vidworld <name>"."""
    module = importlib.import_module(COMMANDS[name][0])
    p = argparse.ArgumentParser(prog=f"vidworld {name}", description=COMMANDS[name][1])
    module.add_arguments(p)
    return module, p


def parse_command_args(p: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse with overrides and flags in any order.

    Plain `parse_args` stops collecting a `nargs="*"` positional at the first flag, so an override after a
    flag is an "unrecognized argument". Intermixed parsing takes the flags first, then the positionals.
    It refuses (TypeError, before reading any argument) parsers it cannot handle, e.g. a positional of
    nargs=REMAINDER; those keep the plain parse.
    """
    try:
        return p.parse_intermixed_args(argv)
    except TypeError:
        return p.parse_args(argv)


def _one_line(e: BaseException) -> str:
    """The error as one line; for OSError "<reason>: <path>" (the path is what the user must fix)."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        text = f"{e.strerror}: {os.fsdecode(e.filename)}"
        if e.filename2 is not None:
            text += f" -> {os.fsdecode(e.filename2)}"
    else:
        text = str(e) or type(e).__name__
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    # SDL (pygame, used by classic-control rendering) otherwise turns SIGINT/SIGTERM into quit events that
    # nobody reads, and `kill` / Ctrl-C stop working for every command that renders an env.
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
    argv = sys.argv[1:] if argv is None else argv
    prog = f"vidworld {argv[0]}" if argv and argv[0] in COMMANDS else "vidworld"
    try:
        # Import only the chosen command's module when we can (fast start); fall back to the full parser
        # (help, or an unknown command: argparse prints the choices and exits).
        if argv and argv[0] in COMMANDS:
            module, p = command_parser(argv[0])
            args = parse_command_args(p, argv[1:])
        else:
            args = build_parser().parse_args(argv)
            module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as e:  # user errors (incl. ConfigError, FileNotFoundError): no traceback
        if os.environ.get("VIDWORLD_TRACEBACK"):
            raise
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
