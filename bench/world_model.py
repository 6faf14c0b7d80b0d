"""Benchmark of the latent diffusion world model (not a test). Prints a table.

    python bench/world_model.py [--model runs/demo/model] [--threads 2] [--seconds 3]

Measures, on this machine and in this run:
* a plain fp32 matmul's FLOP/s (the reference every rate is compared to: the machine is shared and noisy);
* training samples/s of the dynamics stage (denoiser + heads, fwd + bwd + the training's fused AdamW)
  and of the VAE;
* imagined transitions/s at batch 1 and 64, latent only and with pixel decode;
* model FLOPs per transition (torch.utils.flop_counter.FlopCounterMode) and the achieved FLOP/s as a
  fraction of the matmul reference;
* for comparison, diffusers' UNet2DModel of a similar size as the denoiser's network.
Without --model it builds the demo-sized architecture from configs/demo.yaml (random weights: speed only).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from vidworld.experiment import load_experiment
from vidworld.world_models import load_world_model
from vidworld.world_models.diffusion.denoiser import edm_loss
from vidworld.world_models.diffusion.heads import heads_loss
from vidworld.precision import inference_autocast
from vidworld.train.optim import adamw
from vidworld.world_models.diffusion.model import DiffusionWorldModel


def rate(fn, seconds: float, warmup: int = 2) -> float:
    """Calls per second of fn(), best of a few windows (robust to a noisy neighbour)."""
    for _ in range(warmup):
        fn()
    best = 0.0
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3 or n == 0:
            fn()
            n += 1
        best = max(best, n / (time.perf_counter() - t0))
    return best


def matmul_flops(seconds: float) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return rate(lambda: a @ b, seconds) * 2 * 2048**3


def build_model(path: str | None) -> DiffusionWorldModel:
    """The saved model at `path`, or an untrained one of the demo config's sizes (speed does not need weights)."""
    if path:
        model = load_world_model(path)
        if not isinstance(model, DiffusionWorldModel):
            raise SystemExit(f"{path}: this benchmark measures diffusion world models, got {type(model).__name__}")
        return model
    cfg = load_experiment(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")
    d, K = cfg.diffusion, cfg.model.context_length
    return DiffusionWorldModel(d.build_vae(cfg.collect.env.frame_size), d.build_denoiser(K, 2), d.build_heads(K, 2),
                               d.sampler).eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = build_model(args.model)
    K, (c, h, w), S = model.context_length, model.latent_shape, model.frame_size
    cfg = load_experiment(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")
    ref = matmul_flops(args.seconds)
    rows: list[tuple[str, str, str]] = [("fp32 matmul 2048^2 (reference)", f"{ref / 1e9:.0f} GFLOP/s", "1.00")]

    # --- imagination -----------------------------------------------------------------------------------
    g = torch.Generator().manual_seed(0)
    for B in (1, 64):
        frames = torch.randint(0, 256, (B, K, 3, S, S), dtype=torch.uint8, generator=g)
        state = model.init(frames, torch.randint(0, 2, (B, K - 1), generator=g))
        acts = torch.randint(0, 2, (B,), generator=g)
        with FlopCounterMode(display=False) as fc:
            model.step(state, acts, g)
        step_flops = fc.get_total_flops() / B
        with FlopCounterMode(display=False) as fc2:
            model.decode(state)
        dec_flops = fc2.get_total_flops() / B
        r = rate(lambda: model.step(state, acts, g), args.seconds) * B
        rows.append((f"imagined transitions/s, batch {B}, latent only ({model.sampler_config.num_steps} sampler "
                     f"steps)", f"{r:.0f}/s ({step_flops / 1e6:.1f} MFLOP each)", f"{r * step_flops / ref:.2f}"))
        rd = rate(lambda: (model.step(state, acts, g), model.decode(state)), args.seconds) * B
        rows.append((f"imagined transitions/s, batch {B}, with pixel decode", f"{rd:.0f}/s "
                     f"({(step_flops + dec_flops) / 1e6:.1f} MFLOP each)", f"{rd * (step_flops + dec_flops) / ref:.2f}"))
        if B > 1:  # what planning uses by default where the hardware has native bf16 (see vidworld/precision.py)
            with inference_autocast("cpu", "auto") as precision:
                rb = rate(lambda: model.step(state, acts, g), args.seconds) * B
            rows.append((f"imagined transitions/s, batch {B}, latent only, precision auto -> {precision}",
                         f"{rb:.0f}/s ({rb / r:.2f}x fp32)", f"{rb * step_flops / ref:.2f}"))

    # --- training ---------------------------------------------------------------------------------------
    B = cfg.train.dynamics_batch_size
    den, heads = model.denoiser.train(), model.heads.train()
    opt = adamw(list(den.parameters()) + list(heads.parameters()), 1e-4, 0.0)  # what training uses
    ctx, tgt = torch.randn(B, K, c, h, w), torch.randn(B, c, h, w)
    a, rew, term = torch.randint(0, 2, (B, K)), torch.ones(B), torch.zeros(B, dtype=torch.bool)

    def train_step():
        loss = edm_loss(den, tgt, ctx, a, cfg.diffusion.denoiser) + heads_loss(heads, ctx, a, tgt, rew, term, cfg.diffusion.heads)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as fc:
        train_step()
    tf = fc.get_total_flops() / B
    r = rate(train_step, args.seconds) * B
    rows.append((f"dynamics training samples/s (batch {B})", f"{r:.0f}/s ({tf / 1e6:.1f} MFLOP each)",
                 f"{r * tf / ref:.2f}"))
    vae = model.vae.train()
    vopt = adamw(vae.parameters(), 1e-4, 0.0)
    x = torch.rand(cfg.train.vae_batch_size, 3, S, S) * 2 - 1

    def vae_step():
        rec, kl = vae(x)
        loss = (rec - x).pow(2).mean() + 1e-6 * kl.mean()
        vopt.zero_grad(set_to_none=True)
        loss.backward()
        vopt.step()

    with FlopCounterMode(display=False) as fc:
        vae_step()
    vf = fc.get_total_flops() / len(x)
    r = rate(vae_step, args.seconds) * len(x)
    rows.append((f"VAE training samples/s (batch {len(x)})", f"{r:.0f}/s ({vf / 1e6:.1f} MFLOP each)",
                 f"{r * vf / ref:.2f}"))

    # --- the generic diffusers block at a similar size, for comparison ---------------------------------
    try:
        from diffusers import UNet2DModel

        unet = UNet2DModel(sample_size=h, in_channels=c * (K + 1), out_channels=c,
                           block_out_channels=tuple(cfg.diffusion.denoiser.channels), layers_per_block=1,
                           down_block_types=("DownBlock2D",) * len(cfg.diffusion.denoiser.channels),
                           up_block_types=("UpBlock2D",) * len(cfg.diffusion.denoiser.channels),
                           class_embed_type="identity", norm_num_groups=8).eval()
        xin = torch.randn(64, c * (K + 1), h, w)
        t = torch.ones(64)
        cls = torch.randn(64, unet.time_embedding.linear_1.out_features * 1)
        with torch.no_grad():
            r_unet = rate(lambda: unet(xin, t, class_labels=cls), args.seconds) * 64
        with torch.no_grad():
            r_own = rate(lambda: den(tgt[:1].expand(64, -1, -1, -1).contiguous(), torch.ones(64),
                                     ctx[:1].expand(64, -1, -1, -1, -1).contiguous(), a[:1].expand(64, -1)),
                         args.seconds) * 64
        n_unet = sum(p.numel() for p in unet.parameters()) / 1e6
        n_own = sum(p.numel() for p in den.parameters()) / 1e6
        rows.append((f"denoiser forward calls/s, batch 64 (ours, {n_own:.2f}M params)", f"{r_own:.0f}/s", "-"))
        rows.append((f"diffusers UNet2DModel same channels, batch 64 ({n_unet:.2f}M params)", f"{r_unet:.0f}/s", "-"))
    except Exception as e:  # the comparison is optional; never hide the main numbers
        rows.append(("diffusers UNet2DModel comparison", f"skipped: {e}", "-"))

    width = max(len(r[0]) for r in rows)
    print(f"threads={args.threads}, model={'random demo-sized' if not args.model else args.model}")
    print(f"| {'measure'.ljust(width)} | value | fraction of matmul FLOP/s |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for name, value, frac in rows:
        print(f"| {name.ljust(width)} | {value} | {frac} |")


if __name__ == "__main__":
    main()
