"""MCTS simulations/s (not a test): the shared batched search (`planning/mcts.py`) over MuZero's CartPole net.

    python bench/mcts.py [--simulations 50] [--batches 1 16 64 256] [--seconds 3] [--threads 1]

One move = one search of `--simulations` simulations from B roots at once (B parallel envs: self-play and
evaluation run the envs in lockstep, so every simulation is one batched dynamics + prediction call for all B
trees). Simulations/s = B x simulations x moves / seconds. The network is the one configs/muzero_cartpole_state.yaml
trains (state vector, latent 64, MLPs 2 x 128: muzero-general's CartPole size); weights are random (speed
does not depend on them). Printed as a markdown table with the ratio to muzero-general's ~2,050
simulations/s measured on these 2 cores (issue 11; its tree is Python at batch 1) and to our own batch 1.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from vidworld.config import load_config
from vidworld.experiment import ExperimentConfig
from vidworld.planning.mcts_planner import mcts_policy
from vidworld.protocol import ActionSpec
from vidworld.world_models.muzero.model import build_model

MUZERO_GENERAL = 2050.0  # simulations/s, muzero-general CartPole, these 2 cores (issue 11)
ROOT = Path(__file__).resolve().parents[1]


def measure(model, batch: int, simulations: int, seconds: float) -> float:
    g = torch.Generator().manual_seed(0)
    K = model.context_length
    obs = torch.randn(batch, K, 4, generator=g)
    acts = torch.randint(0, 2, (batch, K - 1), generator=g)
    state = model.init(obs, acts)
    kw = dict(value_fn=model.value, prior_fn=model.policy_logits, discount=0.997, generator=g)
    with torch.inference_mode():
        mcts_policy(model, state, simulations, **kw)  # warm-up
        moves, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            mcts_policy(model, state, simulations, **kw)
            moves += 1
        elapsed = time.perf_counter() - t0
    return batch * simulations * moves / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--simulations", type=int, default=50)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(ExperimentConfig, ROOT / "configs" / "muzero_cartpole_state.yaml")
    torch.manual_seed(0)
    model = build_model(cfg.muzero.network, (4,), cfg.model.context_length, ActionSpec(n=2)).eval()
    rows = [(b, measure(model, b, args.simulations, args.seconds)) for b in args.batches]
    base = rows[0][1]
    print(f"| roots (parallel envs) | simulations/s ({args.simulations} per move, {args.threads} thread) | "
          f"vs muzero-general ({MUZERO_GENERAL:.0f}/s) | vs our batch {rows[0][0]} |")
    print("|---|---|---|---|")
    for b, rate in rows:
        print(f"| {b} | {rate:,.0f} | {rate / MUZERO_GENERAL:.2f}x | {rate / base:.1f}x |")


if __name__ == "__main__":
    main()
