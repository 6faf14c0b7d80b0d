"""The imagination actor-critic in CartPole's EXACT physics: does the learner (or the features it reads) hold
the return down, or the video world model? A diagnostic of issue 10 (not a test).

    python bench/agent_exact_physics.py --features state                         # the 4-d true state
    python bench/agent_exact_physics.py --features stacked delta --vae <a model folder>   # VAE latent features

"Imagination" here steps CartPole-v1's own equations (gymnasium's, batched in torch: Euler, tau 0.02, force
+-10, termination at |x| > 2.4 or |theta| > 12 degrees), so the world model is perfect; only the features the
actor and critic read differ:
  state    the true (x, x_dot, theta / 0.1, theta_dot);
  stacked  two VAE latents of the rendered frames, [z_{t-1}, z_t] flattened (the diffusion model's features
           before motion_scale);
  delta    [z_t, (z_t - z_{t-1}) * motion_scale] (the diffusion model's features now).
Latents come from the `--vae` model's VAE: CartPole frames depend on (x, theta) only, so the frames of a
(x, theta) grid (steps 0.02 and 0.005 rad, rendered and resized as `vidworld collect` does) are encoded once
and bilinearly interpolated (a table of ~32k frames, ~1 min to build). Real acting reads the same table.

Schedule = the online loop's (`configs/dream_cartpole.yaml`'s agent.* and dream.* unless overridden): a random
prefill, then per iteration `agent_updates` updates of batch `agent_batch` from start states drawn uniformly
from the real replay, then `collect_steps` real steps with the sampled actor; every `eval_every` real steps the
greedy actor plays `eval_episodes` real episodes through the shared harness (rl/evaluate.py, lockstep on the
env's state; seeds eval_seed, eval_seed + 1, ...).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from vidworld.agents.actor_critic import ActorCritic
from vidworld.envs.pixels import PixelEnvConfig, resize_frame
from vidworld.experiment import load_experiment
from vidworld.protocol import ActionSpec, StepOut
from vidworld.rl.evaluate import evaluate_policy
from vidworld.world_models import load_world_model

STATE_SCALE = torch.tensor([1.0, 1.0, 0.1, 1.0])  # theta in units of 0.1 rad: every input of order 1
X_GRID, TH_GRID = (-2.6, 2.6, 0.02), (-0.3, 0.3, 0.005)  # the latent table's (low, high, step)


@dataclass
class PhysState:
    """s [B, 4] = (x, x_dot, theta, theta_dot) now; prev [B, 4] one step before (= s at an episode start)."""

    s: torch.Tensor
    prev: torch.Tensor


class LatentTable:
    """VAE latents of CartPole frames on an (x, theta) grid; `__call__` interpolates [B, 4] states -> [B, F]."""

    def __init__(self, model_path: str, frame_size: int):
        model = load_world_model(model_path).eval()
        self.motion_scale = float(model.vae.config.get("motion_scale", 0.0) or 0.0)
        self.xs = np.arange(X_GRID[0], X_GRID[1] + 1e-9, X_GRID[2])
        self.ths = np.arange(TH_GRID[0], TH_GRID[1] + 1e-9, TH_GRID[2])
        env = gym.make("CartPole-v1", render_mode="rgb_array")
        env.reset(seed=0)
        base = env.unwrapped
        rows = []
        for x in tqdm(self.xs, desc="latent table", leave=False):
            frames = []
            for th in self.ths:
                base.state = np.array([x, 0.0, th, 0.0])
                frames.append(resize_frame(env.render(), frame_size))
            batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
            rows.append(model.encode(batch).float().flatten(1))
        env.close()
        self.table = torch.stack(rows)  # [nx, nth, F]

    def __call__(self, s: torch.Tensor) -> torch.Tensor:
        nx, nth = self.table.shape[:2]
        fx = ((s[:, 0] - X_GRID[0]) / X_GRID[2]).clamp(0, nx - 1.001)
        ft = ((s[:, 2] - TH_GRID[0]) / TH_GRID[2]).clamp(0, nth - 1.001)
        i, j = fx.long(), ft.long()
        u, v = (fx - i)[:, None], (ft - j)[:, None]
        T = self.table
        return ((1 - u) * (1 - v) * T[i, j] + u * (1 - v) * T[i + 1, j]
                + (1 - u) * v * T[i, j + 1] + u * v * T[i + 1, j + 1])


class ExactCartPole:
    """CartPole-v1's dynamics as a batched world model of the protocol (step, features)."""

    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    device = torch.device("cpu")
    action_spec = ActionSpec(kind="discrete", n=2)

    def __init__(self, features: str, table: LatentTable | None):
        self.kind, self.table = features, table
        if features == "state":
            self.feature_dim = 4
        else:
            if table is None:
                raise SystemExit(f"--features {features} needs --vae MODEL (the latent table's VAE)")
            if features == "delta" and table.motion_scale <= 0:
                raise SystemExit("the --vae model's VAE has no measured motion_scale (trained before it existed)")
            self.feature_dim = 2 * table.table.shape[-1]

    def features(self, st: PhysState) -> torch.Tensor:
        if self.kind == "state":
            return st.s / STATE_SCALE
        z_prev, z = self.table(st.prev), self.table(st.s)
        if self.kind == "stacked":
            return torch.cat([z_prev, z], 1)
        return torch.cat([z, (z - z_prev) * self.table.motion_scale], 1)

    def step(self, st: PhysState, action: torch.Tensor, generator=None) -> tuple[PhysState, StepOut]:
        x, x_dot, th, th_dot = st.s.unbind(1)
        force = torch.where(action == 1, self.force_mag, -self.force_mag)
        cos, sin = torch.cos(th), torch.sin(th)
        total = self.masscart + self.masspole
        pml = self.masspole * self.length
        temp = (force + pml * th_dot**2 * sin) / total
        th_acc = (self.gravity * sin - cos * temp) / (self.length * (4.0 / 3.0 - self.masspole * cos**2 / total))
        x_acc = temp - pml * th_acc * cos / total
        nxt = torch.stack([x + self.tau * x_dot, x_dot + self.tau * x_acc,
                           th + self.tau * th_dot, th_dot + self.tau * th_acc], 1)
        done = ((nxt[:, 0].abs() > 2.4) | (nxt[:, 2].abs() > 12 * 2 * math.pi / 360)).float()
        out = StepOut(latent=nxt, reward=torch.ones_like(x), terminated=done > 0.5, termination_prob=done)
        return PhysState(nxt, st.s), out


class RealCartPole:
    """The real env with the replay of (state, previous state) start states."""

    def __init__(self, max_steps: int, seed: int):
        self.env = gym.make("CartPole-v1", max_episode_steps=max_steps)
        self.rng = np.random.default_rng(seed)
        self.starts: list[np.ndarray] = []  # [4 + 4]: state, previous state
        self._starts = np.zeros((0, 8), np.float32)  # the same, stacked once per `run` (sample indexes it)

    def run(self, steps: int, policy) -> None:
        obs, _ = self.env.reset(seed=int(self.rng.integers(1 << 30)))
        prev = obs
        for _ in range(steps):
            self.starts.append(np.concatenate([obs, prev]))
            a = policy(obs, prev)
            prev = obs
            obs, _, terminated, truncated, _ = self.env.step(a)
            if terminated or truncated:
                obs, _ = self.env.reset(seed=int(self.rng.integers(1 << 30)))
                prev = obs
        self._starts = np.stack(self.starts).astype(np.float32)

    def sample(self, batch: int) -> PhysState:
        rows = torch.from_numpy(self._starts[self.rng.integers(len(self._starts), size=batch)])
        return PhysState(rows[:, :4], rows[:, 4:])


class GreedyActor:
    """The greedy actor as a `BatchPolicy` of the shared harness (rl/evaluate.py) on the env's true state:
    every running episode decided in one batched call, each with its own previous state."""

    observation = "state"

    def __init__(self, model: ExactCartPole, agent: ActorCritic):
        self.model, self.agent, self.prev = model, agent, {}

    def start(self, episode: int, obs: np.ndarray, seed: int) -> None:
        self.prev[episode] = obs

    def act_many(self, obs: dict[int, np.ndarray]) -> dict[int, int]:
        ids = sorted(obs)
        now = torch.tensor(np.stack([obs[i] for i in ids]), dtype=torch.float32)
        prev = torch.tensor(np.stack([self.prev[i] for i in ids]), dtype=torch.float32)
        actions = self.agent.act(self.model.features(PhysState(now, prev)), greedy=True)
        self.prev.update({i: obs[i] for i in ids})
        return {i: int(a) for i, a in zip(ids, actions)}


def run_one(features: str, table: LatentTable | None, cfg, seed: int) -> list[tuple[int, float, float, float]]:
    torch.manual_seed(seed)
    model = ExactCartPole(features, table)
    agent = ActorCritic(cfg.agent, model.feature_dim, model.action_spec)
    d = cfg.dream
    real = RealCartPole(d.max_episode_steps, seed)
    gen = torch.Generator().manual_seed(seed)

    def sampled(obs, prev):
        st = PhysState(torch.tensor(obs, dtype=torch.float32)[None], torch.tensor(prev, dtype=torch.float32)[None])
        return int(agent.act(model.features(st), generator=gen)[0])

    eval_env = PixelEnvConfig(id="CartPole-v1", frame_size=cfg.collect.env.frame_size,
                              max_episode_steps=d.max_episode_steps)

    real.run(d.prefill_steps, lambda obs, prev: int(real.rng.integers(2)))
    steps, rows, t0 = d.prefill_steps, [], time.perf_counter()
    bar = tqdm(total=d.real_steps, initial=steps, desc=f"{features}", leave=False)
    while steps < d.real_steps:
        for _ in range(d.agent_updates):
            agent.update(model, real.sample(d.agent_batch), generator=gen)
        n = min(d.collect_steps, d.real_steps - steps)
        real.run(n, sampled)
        steps += n
        bar.update(n)
        if steps % d.eval_every < n or steps >= d.real_steps:
            r = evaluate_policy(GreedyActor(model, agent), eval_env, d.eval_episodes, d.eval_seed)
            rows.append((steps, r.mean, r.std, time.perf_counter() - t0))
            bar.write(f"{features}: {steps} real steps: return {rows[-1][1]:.1f} ± {rows[-1][2]:.1f} "
                      f"({rows[-1][3]:.0f} s)")
    bar.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", nargs="+", choices=("state", "stacked", "delta"), default=["state"])
    p.add_argument("--vae", default=None, help="a diffusion model folder whose VAE makes the latent features")
    p.add_argument("--config", default="configs/dream_cartpole.yaml")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("overrides", nargs="*", help="agent.* / dream.* overrides, e.g. dream.real_steps=20000")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_experiment(args.config, args.overrides)
    if cfg.collect.env.id != "CartPole-v1":
        raise SystemExit(f"exact physics exists for CartPole-v1 only; {args.config} is {cfg.collect.env.id}")
    table = LatentTable(args.vae, cfg.collect.env.frame_size) if args.vae else None
    results = {f: run_one(f, table, cfg, args.seed) for f in args.features}
    steps = [r[0] for r in next(iter(results.values()))]
    print("| features | " + " | ".join(f"{s / 1000:.0f}k" for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for f, rows in results.items():
        print(f"| {f} | " + " | ".join(f"{m:.1f} ± {s:.1f}" for _, m, s, _ in rows) + " |")


if __name__ == "__main__":
    main()
