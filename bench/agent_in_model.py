"""Train the imagination actor-critic inside one fixed, saved world model and evaluate it in the real env (not a
test; a diagnostic of issue 10: does the learner learn when the model is held fixed?).

    python bench/agent_in_model.py --model runs/demo/model --data data/cartpole --updates 2000 \
        --eval-every 250 [agent.entropy_coef=1e-3 agent.horizon=15 ...]
    python bench/agent_in_model.py --model <a dream run's model> --data <run>/replay \
        --init-agent <run>/dream_state/agent.pt <the run's agent.* settings>   # more updates, model held fixed

Start contexts are drawn from the dataset's episodes (as the online loop draws them from its replay); every
`--eval-every` updates the greedy actor plays `--episodes` real episodes through the shared harness
(rl/evaluate.py, seeds from 100000). Prints one row per evaluation and writes them to `--out` (JSON lines).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vidworld.agents.actor_critic import ActorCritic, ActorCriticConfig
from vidworld.config import load_config
from vidworld.data.store import EpisodeStore
from vidworld.envs.pixels import PixelEnvConfig
from vidworld.rl.evaluate import evaluate_policy
from vidworld.rl.policies import ActorPolicy
from vidworld.rl.replay import Replay
from vidworld.train.episodes import WindowSampler
from vidworld.world_models import load_world_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--updates", type=int, default=2000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-episode-steps", type=int, default=500)
    p.add_argument("--out", default=None)
    p.add_argument("--init-agent", default=None, help="start from this saved actor-critic (e.g. a dream run's "
                   "dream_state/agent.pt, with the same agent.* settings) instead of a fresh one")
    p.add_argument("overrides", nargs="*", help="agent.<field>=value")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    model = load_world_model(args.model).eval()
    store = EpisodeStore.open(args.data)
    replay = Replay.of_store(store)
    agent_over = [o[len("agent."):] for o in args.overrides if o.startswith("agent.")]
    if len(agent_over) != len(args.overrides):
        raise SystemExit("overrides must be agent.<field>=value")
    cfg = load_config(ActorCriticConfig, None, agent_over)
    torch.manual_seed(args.seed)
    agent = ActorCritic(cfg, model.feature_dim, model.action_spec)
    if args.init_agent:
        agent.load_state_dict(torch.load(args.init_agent, weights_only=False))
    gen = torch.Generator().manual_seed(args.seed + 1)
    env_cfg = PixelEnvConfig(id=store.manifest["env_id"], frame_size=store.frame_size,
                             max_episode_steps=args.max_episode_steps)
    sampler = WindowSampler(replay.episodes(), model.context_length, pad_starts=True)  # flattened once
    rows, logs, t0 = [], {}, time.perf_counter()
    out = Path(args.out) if args.out else None
    for u in range(1, args.updates + 1):
        batch = sampler.sample(args.batch, gen)
        with torch.no_grad():
            start = model.init(batch.context, batch.actions[:, :-1])
        for k, v in agent.update(model, start, gen).items():
            logs.setdefault(k, []).append(float(v))
        if u % args.eval_every == 0 or u == args.updates:
            res = evaluate_policy(ActorPolicy(model, agent, greedy=True), env_cfg, args.episodes, 100_000)
            row = {"updates": u, "minutes": (time.perf_counter() - t0) / 60, "return_mean": res.mean,
                   "return_std": res.std, **{k: sum(v) / len(v) for k, v in logs.items()}}
            logs = {}
            rows.append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
            if out:
                out.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
