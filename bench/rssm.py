"""Benchmark of the RSSM world model (not a test). Prints a table.

    python bench/rssm.py [--threads 2] [--precision fp32 bf16] [--rows train imagine compact]
    python bench/rssm.py --rows compact --precision bf16     # size a CartPole training budget (~30 s)

Measures, on this machine and in this run (issue 9's speed targets):
* a plain fp32 2048^2 matmul's FLOP/s: the reference every rate is also given as a fraction of (the
  machine is shared and noisy, fractions hold better than rates);
* world-model training frames/s of the Atari-100k-size preset (dreamerv3-torch's world model, 15.7M
  parameters) on 16 sequences x 64 steps of 64x64 frames: the whole training step (posterior filtering,
  decoder, heads, KL balance, backward, the training's fused AdamW), random weights and frames;
* imagination latent steps/s: 1024 start states x 15 prior steps, as `model.step` (the protocol step: prior
  sample + reward/continue heads) and as the dynamics alone (`networks.imagine_step`, what dreamerv3-torch's
  imagination runs per step besides its actor);
* the same training step for the compact preset at the CartPole config's 16 x 32 (to size a time budget);
* FLOPs per frame / per step (torch.utils.flop_counter, forward + backward for training), the achieved
  FLOP/s as a fraction of the matmul's, and the ratio to dreamerv3-torch's rates on these 2 cores as given
  in issue 9 (training 187-237 samples/s, imagination 11,000-12,200 latent steps/s; not re-measured here),
  both as measured and projected to an idle machine (our rate x 250 GFLOP/s / this run's matmul rate: the
  same fraction of the idle matmul rate of /work/shared/PLATFORM.md; the fair comparison when this run's
  machine is busy, as the shared one usually is).
bf16 rows run the networks under CPU bf16 autocast (train.mixed_precision=bf16 in training; DreamerV3 itself
computes in bf16); parameters, optimizer and losses stay fp32.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from vidworld.protocol import ActionSpec
from vidworld.train.optim import adamw
from vidworld.world_models.rssm.config import RSSMConfig
from vidworld.world_models.rssm.model import RSSMState, RSSMWorldModel
from vidworld.world_models.rssm.train import RSSMLoss

DREAMER_TORCH_TRAIN = (187.0, 237.0)  # samples/s, 16 x 64 batch, these 2 cores (issue 9)
DREAMER_TORCH_IMAGINE = (11_000.0, 12_200.0)  # latent steps/s, 1024 starts x 15 steps (issue 9)
IDLE_MATMUL = 250e9  # fp32 2048^2 matmul FLOP/s of these 2 cores when idle (PLATFORM.md)
ATARI_ACTIONS = 6


def best_seconds(fn, repeats: int, warmup: int = 1) -> float:
    """Fastest of `repeats` timed calls after `warmup` (robust to a noisy neighbour)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_flops(seconds: float = 2.0) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return n * 2 * 2048**3 / (time.perf_counter() - t0)


def autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def train_step_fn(preset: str, batch: int, seq: int, precision: str):
    """A closure running one full training step; and the FLOPs of one (forward + backward)."""
    torch.manual_seed(0)
    net = RSSMConfig(preset=preset).build(64, ATARI_ACTIONS)
    module = RSSMLoss(net, 1.0, 0.5, 0.1)
    opt = adamw(module.parameters(), 1e-4, 0.0)
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (batch, seq, 3, 64, 64), generator=g, dtype=torch.uint8)
    actions = torch.randint(0, ATARI_ACTIONS, (batch, seq), generator=g)
    rewards, cont = torch.rand(batch, seq, generator=g), torch.ones(batch, seq)
    is_first = torch.zeros(batch, seq, dtype=torch.bool)
    is_first[:, 0] = True
    uniform = torch.rand(batch, seq, net.stoch, generator=g)

    def step():
        with autocast(precision):
            loss, _ = module(frames, actions, rewards, cont, is_first, uniform)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    counter = FlopCounterMode(display=False)  # on 2 of the sequences (FLOPs are linear in the batch)
    with counter:
        with autocast(precision):
            loss, _ = module(frames[:2], actions[:2], rewards[:2], cont[:2], is_first[:2], uniform[:2])
        loss.backward()
    opt.zero_grad(set_to_none=True)
    return step, counter.get_total_flops() * batch / 2, sum(p.numel() for p in net.parameters())


def imagine_fns(precision: str, starts: int = 1024, horizon: int = 15):
    torch.manual_seed(0)
    net = RSSMConfig(preset="atari100k").build(64, ATARI_ACTIONS)
    model = RSSMWorldModel(net, ActionSpec(n=ATARI_ACTIONS), context_length=8).eval()
    g = torch.Generator().manual_seed(0)
    start = RSSMState(deter=torch.randn(starts, net.config.deter, generator=g).tanh(),
                      stoch=F.one_hot(torch.randint(0, net.classes, (starts, net.stoch), generator=g),
                                      net.classes).float().flatten(1))
    actions = torch.randint(0, ATARI_ACTIONS, (horizon, starts), generator=g)
    onehots = F.one_hot(actions, ATARI_ACTIONS).float()

    @torch.no_grad()
    def protocol():
        s = start
        with autocast(precision):
            for t in range(horizon):
                s, _ = model.step(s, actions[t], generator=g)

    @torch.no_grad()
    def dynamics():
        d, z = start.deter, start.stoch
        with autocast(precision):
            for t in range(horizon):
                d, z, _ = net.imagine_step(d, z, onehots[t], torch.rand(starts, net.stoch, generator=g))

    flops = {}
    with torch.no_grad():  # one step on 64 starts (FLOPs are linear in the batch)
        small = RSSMState(deter=start.deter[:64], stoch=start.stoch[:64])
        for name, fn in (("protocol", lambda: model.step(small, actions[0, :64], generator=g)),
                         ("dynamics", lambda: net.imagine_step(small.deter, small.stoch, onehots[0, :64],
                                                               torch.rand(64, net.stoch, generator=g)))):
            counter = FlopCounterMode(display=False)
            with counter, autocast(precision):
                fn()
            flops[name] = counter.get_total_flops() / 64
    return {"protocol": protocol, "dynamics": dynamics}, flops, starts * horizon


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    p.add_argument("--train-steps", type=int, default=2, help="timed steps per row, after a warm-up")
    p.add_argument("--imagine-repeats", type=int, default=2, help="timed 1024 x 15 rollouts per row")
    rows_all = ["train", "imagine", "compact"]
    p.add_argument("--rows", nargs="+", choices=rows_all, default=rows_all)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    refs = [matmul_flops()]  # measured again after each row: the neighbours' load moves during a run
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []

    def add(label, rate, flops_each, unit, baseline=None):
        refs.append(matmul_flops(1.0))
        ref = (refs[-2] + refs[-1]) / 2  # the matmul rate around this row
        frac = rate * flops_each / ref
        vs = vs_frac = ""
        if baseline:
            vs = f"{rate / baseline[1]:.2f}-{rate / baseline[0]:.2f}x"
            # the same fraction of an idle machine's matmul rate, against dreamerv3-torch's idle-machine rate
            idle = rate * IDLE_MATMUL / ref
            vs_frac = f"{idle / baseline[1]:.2f}-{idle / baseline[0]:.2f}x"
        rows.append((label, f"{rate:,.0f} {unit}", f"{frac:.2f}", f"{flops_each / 1e6:.1f}", vs, vs_frac))

    for precision in args.precision if "train" in args.rows else ():
        step, flops, params = train_step_fn("atari100k", 16, 64, precision)
        secs = best_seconds(step, args.train_steps)
        add(f"training, atari100k preset ({params / 1e6:.1f}M), 16 x 64, {precision}", 16 * 64 / secs,
            flops / 1024, "frames/s", DREAMER_TORCH_TRAIN)
    for precision in args.precision if "imagine" in args.rows else ():
        fns, flops, n = imagine_fns(precision)
        for name in ("dynamics", "protocol"):
            secs = best_seconds(fns[name], args.imagine_repeats)
            what = "dynamics only" if name == "dynamics" else "model.step (+ reward/continue heads)"
            add(f"imagination 1024 x 15, {what}, {precision}", n / secs, flops[name], "steps/s",
                DREAMER_TORCH_IMAGINE)
    if "compact" in args.rows:
        for precision in args.precision:
            step, flops, params = train_step_fn("compact", 16, 32, precision)
            secs = best_seconds(step, args.train_steps)
            add(f"training, compact preset ({params / 1e6:.1f}M), 16 x 32, {precision}", 16 * 32 / secs,
                flops / 512, "frames/s")
            notes.append(f"compact {precision}: {8 * 60 / secs:.0f} steps of 16 x 32 fit 8 minutes at this "
                         "rate (rssm.train_steps for an 8-minute CartPole run on this machine as loaded now)")
    print(f"\nRSSM speed, {args.threads} threads (fractions are of the matmul measured in this run)\n")
    print("| measure | rate | fraction of matmul FLOP/s | MFLOP each | rate vs dreamerv3-torch "
          "| projected to an idle machine vs dreamerv3-torch |")
    print("|---|---|---|---|---|---|")
    ref_text = f"{min(refs) / 1e9:.0f}-{max(refs) / 1e9:.0f} GFLOP/s"
    for r in [("fp32 matmul 2048^2 (reference, over the run)", ref_text, "1.00", "", "", ""), *rows]:
        print("| " + " | ".join(r) + " |")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
