"""`vidworld <command>`: one thin dispatcher; each command lives in the module that owns it.

A command module exposes `add_arguments(parser)` and `run(args) -> int | None`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("vidworld.demo", "collect, train, evaluate and plan on CartPole pixels, end to end"),
    "collect": ("vidworld.data.collect", "collect episodes from a real gymnasium env into an episode store"),
    "train": ("vidworld.train.run", "train a latent video diffusion world model (accelerate)"),
    "eval-wm": ("vidworld.eval.run", "evaluate a world model on held-out episodes (PSNR/SSIM vs horizon, ...)"),
    "rollout": ("vidworld.eval.rollout", "write an imagined video for a context and an action sequence"),
    "plan": ("vidworld.planning.run", "plan with a world model in the real env and report returns"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vidworld", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    # SDL (pygame, used by classic-control rendering) otherwise turns SIGINT/SIGTERM into quit events that
    # nobody reads, and `kill` / Ctrl-C stop working for every command that renders an env.
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
    argv = sys.argv[1:] if argv is None else argv
    # Import only the chosen command's module when we can (fast start); fall back to the full parser.
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[argv[0]][0])
        p = argparse.ArgumentParser(prog=f"vidworld {argv[0]}", description=COMMANDS[argv[0]][1])
        module.add_arguments(p)
        args = p.parse_args(argv[1:])
    else:
        args = build_parser().parse_args(argv)
        module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except (ValueError, FileNotFoundError) as e:  # user errors: one clear line, no traceback
        print(f"vidworld {argv[0] if argv else ''}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
