"""`vidworld <command>`: one thin dispatcher; each command lives in the module that owns it.

A command module exposes `add_arguments(parser)` and `run(args) -> int | None`.

Positional `key.sub=value` overrides and flags may come in any order (`vidworld train CONFIG --resume
run_dir=x`): a command's arguments are parsed with argparse's intermixed parsing.

Exit codes: 0 success; 2 a user-facing error, printed as ONE line "vidworld <cmd>: error: ..." (bad
config or argument values, missing/unwritable files and folders: OSError, and ValueError raised by vidworld's
own checks); 130 interrupted (Ctrl-C). Anything else is a bug and keeps its traceback: TypeError,
AttributeError, ... and also a ValueError that a third-party library or the standard library raised on its
own (an unpacking inside gymnasium, a JSON decode, ...): input that reached code which never checked
it, whose message would not say what to fix. Set VIDWORLD_TRACEBACK=1 to get the traceback of a
user-facing error too.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import sysconfig
from types import ModuleType

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("vidworld.demo", "collect, train, evaluate and plan on CartPole pixels, end to end"),
    "collect": ("vidworld.data.collect", "collect episodes from a real gymnasium env into an episode store"),
    "train": ("vidworld.train.run", "train a world model of the kind model.kind names (accelerate)"),
    "eval-wm": ("vidworld.eval.run", "evaluate a world model on held-out episodes (PSNR/SSIM vs horizon, ...)"),
    "rollout": ("vidworld.eval.rollout", "write an imagined video for a context and an action sequence"),
    "plan": ("vidworld.planning.run", "plan with a world model in the real env and report returns"),
    "dream": ("vidworld.rl.online", "online model-based RL: collect, train the world model, learn in imagination"),
    "compare": ("vidworld.compare.run", "every world model x every consumer on one real env and budget: one table"),
    "play": ("vidworld.play.run", "play inside a world model in a local web page (keys -> imagined frames)"),
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


_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_LIBRARIES = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")})


def _is_user_error(e: BaseException) -> bool:
    """OSError always (a path the user gave); a ValueError unless it was raised inside a library.

    Where the innermost frame of the traceback is decides: vidworld's own checks raise from vidworld (also
    when installed into site-packages); a library's ValueError escaping unwrapped means vidworld passed it
    input it had not checked (e.g. "too many values to unpack" from gymnasium's CartPole.step given another
    env's state): a bug to fix where the input enters, not a message for the user. (An error raised by C code,
    e.g. numpy broadcasting, has no frame of its own: it counts where its Python caller is.)"""
    if isinstance(e, OSError) or e.__traceback__ is None:
        return True
    tb = e.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = os.path.abspath(tb.tb_frame.f_code.co_filename)
    if where.startswith(_PACKAGE + os.sep):
        return True
    return not where.startswith(_LIBRARIES)


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
        if os.environ.get("VIDWORLD_TRACEBACK") or not _is_user_error(e):
            raise
        print(f"{prog}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
