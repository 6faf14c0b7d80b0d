"""How a dream run's actor fails in the real env (issue 10): greedy vs sampled returns on the loop's evaluation
seeds, why each episode ended (pole angle or cart position, from the env's state), and along the first failing
episodes the critic's value, the actor's probabilities and the termination head's probability of the real
transitions (teacher-forced on the real next frame, and in imagination); then, from a few real states before
each traced failure, the model rolled forward with the episode's real actions beside the real episode: the
critic's value along the imagined and along the real states and the latent RMS error between them (is the
model optimistic where the actor fails?).

    python bench/actor_failures.py runs/dream_cartpole_delta [--episodes 10] [--trace 2] [--horizon 15]

Loads the run's last checkpointed iteration as bench/acting.py does (not beside a live run of that run_dir).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from acting import load_run
from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env
from vidworld.rl.policies import ActorPolicy

THETA_LIMIT, X_LIMIT = 12 * 2 * np.pi / 360, 2.4  # CartPole-v1's termination thresholds


def play(model, agent, env_cfg, seed: int, greedy: bool):
    """One episode: frames [T+1, H, W, 3], actions [T], states [T+1, 4]."""
    policy = ActorPolicy(model, agent, greedy=greedy)
    env = make_pixel_env(env_cfg, seed=seed)
    obs, info = env.reset(seed=seed)
    policy.reset(obs, seed)
    frames, acts, states, done = [obs], [], [info["state"]], False
    while not done:
        a = policy.act(obs)
        obs, _, term, trunc, info = env.step(a)
        frames.append(obs)
        acts.append(a)
        states.append(info["state"])
        done = term or trunc
    env.close()
    return np.stack(frames), np.asarray(acts), np.stack(states)


def cause(states: np.ndarray, steps: int, cap: int) -> str:
    x, theta = states[-1, 0], states[-1, 2]
    if steps >= cap:
        return "cap"
    return "angle" if abs(theta) > THETA_LIMIT else ("cart" if abs(x) > X_LIMIT else "?")


def real_state(model, F: torch.Tensor, A: torch.Tensor, t: int):
    """The model's state of the real context ending at frame t (F uint8 [T+1, 3, H, W], A long [T]); the
    episode start is padded with the first frame and action 0, as the acting agent pads it."""
    K = model.context_length
    idx = [max(i, 0) for i in range(t - K + 1, t + 1)]
    ctx_a = torch.tensor([[int(A[i]) if i >= 0 else 0 for i in range(t - K + 1, t)]], dtype=torch.long)
    return model.init(F[idx][None], ctx_a)


def as_tensors(frames: np.ndarray, acts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(frames).permute(0, 3, 1, 2), torch.from_numpy(acts).long()


@torch.no_grad()
def trace(model, agent, frames, acts, states, every: int = 3, last: int = 40) -> None:
    K = model.context_length
    F, A = as_tensors(frames, acts)
    T = len(acts)
    print("| t | theta | theta_dot | x | action | critic value | actor probs | term. prob (real next frame) | "
          "term. prob (imagined) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t in sorted(set(range(max(K - 1, T - last), T, every)) | {T - 1}):
        state = real_state(model, F, A, t)
        forced = model.predict_heads(state, A[t:t + 1], model.encode(F[t + 1][None]))
        _, imagined = model.step(state, A[t:t + 1], torch.Generator().manual_seed(0))
        feats = model.features(state)
        probs = agent.actor(feats.float()).probs[0]
        s = states[t + 1]
        print(f"| {t} | {s[2]:+.3f} | {s[3]:+.2f} | {s[0]:+.2f} | {int(A[t])} | {float(agent.value(feats)[0]):.1f} | "
              f"{', '.join(f'{p:.3f}' for p in probs.tolist())} | {float(forced.termination_prob[0]):.3f} | "
              f"{float(imagined.termination_prob[0]):.3f} |")


@torch.no_grad()
def imagined_vs_real(model, agent, frames, acts, states, horizon: int, before=(60, 40, 20)) -> None:
    """From the real states `before` steps ahead of the episode's end: `horizon` model steps with the real
    actions (sampler seed 0) beside the real continuation."""
    F, A = as_tensors(frames, acts)
    T = len(acts)
    latent = getattr(model, "latent", model.features)  # the newest frame's latent where the model has one
    for back in before:
        t0 = T - back
        if t0 < model.context_length - 1:
            continue
        imagined, n = real_state(model, F, A, t0), min(horizon, T - t0)
        gen = torch.Generator().manual_seed(0)
        v_im, v_real, rmse = [], [], []
        for k in range(n):
            imagined, _ = model.step(imagined, A[t0 + k:t0 + k + 1], gen)
            real = real_state(model, F, A, t0 + k + 1)
            v_im.append(float(agent.value(model.features(imagined))[0]))
            v_real.append(float(agent.value(model.features(real))[0]))
            rmse.append(float((latent(imagined) - latent(real)).float().pow(2).mean().sqrt()))
        print(f"\nfrom t = {t0} ({back} steps before the end; x = {states[t0, 0]:+.2f}, theta = {states[t0, 2]:+.3f}), "
              f"{n} steps with the real actions:")
        print("| | " + " | ".join(str(k + 1) for k in range(n)) + " |")
        print("|---" * (n + 1) + "|")
        for name, row, fmt in (("critic value, imagined", v_im, "{:.0f}"), ("critic value, real", v_real, "{:.0f}"),
                               ("latent RMS error", rmse, "{:.2f}")):
            print(f"| {name} | " + " | ".join(fmt.format(v) for v in row) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--trace", type=int, default=2, help="failing greedy episodes to trace step by step")
    p.add_argument("--horizon", type=int, default=15, help="imagined steps beside the real ones (0: skip)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg, model, agent, state = load_run(Path(args.run_dir))
    cap = cfg.dream.max_episode_steps
    env_cfg = PixelEnvConfig(**{**cfg.collect.env.__dict__, "max_episode_steps": cap})
    seeds = [cfg.dream.eval_seed + i for i in range(args.episodes)]
    print(f"{args.run_dir}: iteration {state.iteration}, {state.real_steps} real steps; eval seeds {seeds[0]}..")
    failing = []
    for greedy in (True, False):
        rows = []
        for seed in seeds:
            frames, acts, states = play(model, agent, env_cfg, seed, greedy)
            rows.append((len(acts), cause(states, len(acts), cap), states[-1, 0], states[-1, 2],
                         np.abs(states[:, 0]).max()))
            if greedy and rows[-1][1] != "cap" and len(failing) < args.trace:
                failing.append((seed, frames, acts, states))
        lens = [r[0] for r in rows]
        print(f"\n{'greedy' if greedy else 'sampled'}: return {np.mean(lens):.1f} ± {np.std(lens):.1f}; "
              "per episode (steps, end, final x, final theta, max |x|):")
        print("; ".join(f"{n} {c} x={x:+.2f} th={th:+.3f} max|x|={mx:.2f}" for n, c, x, th, mx in rows))
    for seed, frames, acts, states in failing:
        print(f"\ngreedy episode seed {seed}: {len(acts)} steps, the last 40")
        trace(model, agent, frames, acts, states)
        if args.horizon:
            imagined_vs_real(model, agent, frames, acts, states, args.horizon)


if __name__ == "__main__":
    main()
