"""Does MuZero's pixel representation learn CartPole at all? A supervised probe (not a test). Prints a table.

    python bench/muzero_representation.py [--episodes 300] [--updates 400] [--norms batch group] [--threads 2]

Collects random-policy CartPole-v1 episodes at 64x64 (seeded, so every run sees the same frames), and trains
the representation + prediction networks of configs/muzero_cartpole_pixels.yaml (its K=4 frame stack with action
planes, conv encoder, min-max scaled latent, value head) to predict each window's discounted number of steps
left in its episode, with the learner's loss (cross-entropy on the h(x) support) and learning rate: no search,
no unroll, no self-play. A representation that cannot learn this cannot give the search anything to work with.
Reported every `--every` updates, on 500 held-out windows: the correlation of predicted and true values,
the std of the predicted value and of the latent across states (a collapsed representation gives ~0 for both).

Why it exists (issue 11, 2026-12-08): the pixel MuZero run stayed at return 9 (self-play on one action); its
root value was the same for every state (std 0.001). This probe showed the cause (`--updates 1500 --every 250`):
with GroupNorm(1, c) after each conv the latent collapsed within 250 updates (held-out corr 0.04 at 1500); with
BatchNorm it learned the values (0.51 at 500 updates, 0.61 at 1500).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env
from vidworld.experiment import load_experiment
from vidworld.protocol import ActionSpec
from vidworld.rl.muzero_learner import cross_entropy
from vidworld.rl.muzero_replay import windows
from vidworld.world_models.muzero.config import ENCODER_NORMS
from vidworld.world_models.muzero.model import build_model
from vidworld.world_models.muzero.support import scalar_to_support, support_to_scalar

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "muzero_cartpole_pixels.yaml"


def collect(episodes: int, K: int, discount: float, seed: int = 0):
    """Random-policy episodes -> windows obs uint8 [M, K, 3, 64, 64], actions long [M, K-1], values [M]."""
    env = make_pixel_env(PixelEnvConfig(id="CartPole-v1", frame_size=64), seed=seed)
    rng = np.random.default_rng(seed)
    obs, acts, values = [], [], []
    for _ in range(episodes):
        frame, _ = env.reset()
        frames, actions, done = [frame], [], False
        while not done:
            a = int(rng.integers(2))
            frame, _, term, trunc, _ = env.step(a)
            frames.append(frame)
            actions.append(a)
            done = term or trunc
        fr = torch.from_numpy(np.stack(frames[:-1])).permute(0, 3, 1, 2).contiguous()
        a = torch.tensor(actions)
        N = len(actions)
        o, ca = windows(fr, a, torch.arange(N), K)
        obs.append(o)
        acts.append(ca)
        values.append(torch.tensor([(1 - discount ** (N - t)) / (1 - discount) for t in range(N)]))
    env.close()
    return torch.cat(obs), torch.cat(acts), torch.cat(values).float()


def probe(norm: str, data, updates: int, lr: float, seed: int = 0, every: int = 100) -> list[tuple[int, float, float, float]]:
    """Train with encoder_norm=`norm`; rows (update, held-out corr, value std, latent std)."""
    cfg = load_experiment(CONFIG)
    obs, acts, z = data
    perm = torch.randperm(len(z), generator=torch.Generator().manual_seed(seed))
    test, train = perm[:500], perm[500:]
    net_cfg = cfg.muzero.network
    net_cfg.encoder_norm = norm
    torch.manual_seed(seed)
    nets = build_model(net_cfg, (3, 64, 64), cfg.model.context_length, ActionSpec(n=2)).nets
    opt = torch.optim.Adam(nets.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed + 1)
    rows = []
    for step in range(updates + 1):
        if step % every == 0 or step == updates:
            nets.eval()
            with torch.no_grad():
                latent = nets.represent(obs[test], acts[test])
                v = support_to_scalar(nets.predict(latent)[1], nets.value_support)
            corr = float(np.corrcoef(v.numpy(), z[test].numpy())[0, 1]) if float(v.std()) > 0 else float("nan")
            rows.append((step, corr, float(v.std()), float(latent.std(0).mean())))
        if step == updates:
            break
        idx = train[torch.randint(0, len(train), (cfg.muzero.learn.batch_size,), generator=g)]
        nets.train()
        _, value_logits = nets.predict(nets.represent(obs[idx], acts[idx]))
        loss = cross_entropy(value_logits, scalar_to_support(z[idx], nets.value_support)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=300)
    p.add_argument("--updates", type=int, default=400)
    p.add_argument("--norms", nargs="+", default=list(ENCODER_NORMS), choices=ENCODER_NORMS)
    p.add_argument("--lr", type=float, nargs="+", default=None, help="learning rates (default: the config's)")
    p.add_argument("--every", type=int, default=100, help="evaluate every this many updates")
    p.add_argument("--cache", default=None, help="an .pt file to keep the collected windows in (and reuse)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_experiment(CONFIG)
    if args.cache and Path(args.cache).exists():
        data = torch.load(args.cache)
    else:
        data = collect(args.episodes, cfg.model.context_length, cfg.muzero.search.discount)
        if args.cache:
            torch.save(data, args.cache)
    print(f"{len(data[2])} windows from {args.episodes} random episodes; value targets mean {data[2].mean():.2f}, "
          f"std {data[2].std():.2f}; lr {cfg.muzero.learn.lr}, batch {cfg.muzero.learn.batch_size}")
    print("| encoder_norm | lr | update | held-out corr(value, target) | value std | latent std across states |")
    print("|---|---|---|---|---|---|")
    for norm in args.norms:
        for lr in args.lr or [cfg.muzero.learn.lr]:
            for step, corr, vstd, lstd in probe(norm, data, args.updates, lr, every=args.every):
                print(f"| {norm} | {lr:g} | {step} | {corr:.3f} | {vstd:.3f} | {lstd:.4f} |", flush=True)


if __name__ == "__main__":
    main()
