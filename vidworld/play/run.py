"""`vidworld play --model DIR [--port 7860] [--host 127.0.0.1]`: play inside a world model in the browser.

Loads the model (any pixel-decoding kind, through `load_world_model`), prints the page's URL and serves it
until Ctrl-C. Bound to 127.0.0.1 by default: only this machine can open it (`--host 0.0.0.0` shares it on
the network, without any authentication).
"""

from __future__ import annotations

import argparse

from vidworld.precision import PRECISIONS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="world model folder (from `vidworld train`)")
    p.add_argument("--port", type=int, default=7860, help="TCP port (default 7860; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--data", default=None, help="dataset folder for reset contexts (default: the model's own)")
    p.add_argument("--device", default="cpu", help="torch device for the model")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto: bf16 autocast where the hardware runs it natively, else fp32")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for the model (default 1: a batch-1 step is too small to split, and the "
                        "browser needs a core; with 2 threads on a busy 2-core machine steps were 5x slower)")


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    from vidworld.paths import check_input_dir
    from vidworld.play.server import LOOPBACK_HOSTS, PlayServer, create_app, serve

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    check_input_dir(args.model, "--model")
    import torch

    from vidworld.eval.rollout import parse_device

    parse_device(args.device)
    torch.set_num_threads(args.threads)
    server = PlayServer(args.model, device=args.device, precision=args.precision, dataset=args.data)
    loopback = args.host in LOOPBACK_HOSTS or args.host.startswith("127.")
    app = create_app(server, allowed_hosts=[*LOOPBACK_HOSTS, args.host] if loopback else None)
    try:
        serve(server, app, args.host, args.port,
              announce=lambda url: print(f"vidworld play: serving {url}  (Ctrl-C to stop)", flush=True))
    except KeyboardInterrupt:  # uvicorn has already shut down cleanly; Ctrl-C is how a server is stopped
        pass
    print("vidworld play: stopped", flush=True)
    return 0
