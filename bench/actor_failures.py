"""How a dream run's actor fails in the real env (issue 10): greedy vs sampled returns on the loop's evaluation
seeds, why each episode ended (pole angle or cart position, from the env's state), and along the first failing
episodes the critic's value, the actor's probabilities and the termination head's probability of the real
transitions (teacher-forced on the real next frame, and in imagination).

    python bench/actor_failures.py runs/dream_cartpole_delta [--episodes 10] [--trace 2]

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


@torch.no_grad()
def trace(model, agent, frames, acts, states, every: int = 3, last: int = 40) -> None:
    K = model.context_length
    F = torch.from_numpy(frames).permute(0, 3, 1, 2)
    A = torch.from_numpy(acts).long()
    T = len(acts)
    print("| t | theta | theta_dot | x | action | critic value | actor probs | term. prob (real next frame) | "
          "term. prob (imagined) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t in sorted(set(range(max(K - 1, T - last), T, every)) | {T - 1}):
        idx = [max(i, 0) for i in range(t - K + 1, t + 1)]  # episode start padded with the first frame
        ctx = F[idx][None]
        ctx_a = torch.tensor([[int(A[i]) if i >= 0 else 0 for i in range(t - K + 1, t)]], dtype=torch.long)
        state = model.init(ctx, ctx_a)
        forced = model.predict_heads(state, A[t:t + 1], model.encode(F[t + 1][None]))
        _, imagined = model.step(state, A[t:t + 1], torch.Generator().manual_seed(0))
        feats = model.features(state)
        probs = agent.actor(feats.float()).probs[0]
        s = states[t + 1]
        print(f"| {t} | {s[2]:+.3f} | {s[3]:+.2f} | {s[0]:+.2f} | {int(A[t])} | {float(agent.value(feats)[0]):.1f} | "
              f"{', '.join(f'{p:.3f}' for p in probs.tolist())} | {float(forced.termination_prob[0]):.3f} | "
              f"{float(imagined.termination_prob[0]):.3f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--trace", type=int, default=2, help="failing greedy episodes to trace step by step")
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


if __name__ == "__main__":
    main()
