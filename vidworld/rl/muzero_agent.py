"""MuZero in the online loop (`dream.agent: muzero`): the model is the agent.

The loop (rl/online.py) calls, per iteration: `collect` (self-play: MCTS over envs in lockstep,
rl/collect.py), `train` (bring the new episodes into the prioritised replay with their search statistics,
then dream.model_updates updates per dream.collect_steps new real steps, muzero_learner.py), `eval_policy` (greedy search, rl/policies.py MuZeroPolicy) and `state_dict` (checkpoint:
networks, target network, Adam, the sampling generator, update count, and every game's search statistics and
priorities; observations/actions/rewards are the loop's episode store, reopened on resume).

Iteration 0 self-plays with the freshly initialised network (muzero-general has no random prefill): every
stored step then has a search policy and value to learn from.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from tqdm.auto import tqdm

from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env
from vidworld.protocol import ActionSpec
from vidworld.rl.collect import collect_lockstep
from vidworld.rl.muzero_learner import muzero_update
from vidworld.rl.muzero_replay import Game, MuZeroReplay
from vidworld.rl.policies import MuZeroPolicy
from vidworld.rl.replay import RealEpisode, Replay
from vidworld.world_models.counting import CountingModel
from vidworld.world_models.muzero.model import MuZeroWorldModel, build_model


class MuZeroAgent:
    def __init__(self, cfg, spec: ActionSpec, meta: dict, env_cfg: PixelEnvConfig, env, seed_fn):
        """cfg: the ExperimentConfig (sections muzero, dream, model); env: the loop's real env (probed once
        for the observation shape); seed_fn(episode index) -> env seed (the loop's episode_seed)."""
        self.cfg, self.mz, self.d = cfg, cfg.muzero, cfg.dream
        self.env_cfg, self.seed_fn = env_cfg, seed_fn
        observation = self.mz.network.observation
        _, info = env.reset(seed=0)
        if observation == "state":
            if info.get("state") is None:
                raise ValueError(f"muzero.network.observation: 'state' needs an env with a low-dimensional "
                                 f"info['state']; {env_cfg.id} has none (use 'pixels')")
            obs_shape = (int(np.asarray(info["state"]).shape[0]),)
        else:
            obs_shape = (3, env_cfg.frame_size, env_cfg.frame_size)
        learn = self.mz.learn
        self.consistency = learn.consistency_weight > 0  # EfficientZero's loss: heads and next windows
        torch.manual_seed(self.d.seed)
        self.model: MuZeroWorldModel = build_model(self.mz.network, obs_shape, cfg.model.context_length, spec,
                                                   meta, consistency=self.consistency).eval()
        self.target = copy.deepcopy(self.model.nets).eval()
        self.optimizer = torch.optim.Adam(self.model.nets.parameters(), lr=learn.lr, weight_decay=learn.weight_decay)
        self.generator = torch.Generator().manual_seed(self.d.seed + 2)
        self.updates = 0
        self.replay = MuZeroReplay(spec.n, cfg.model.context_length, learn.priority_alpha, learn.priority_beta)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # search records of collected, unsynced episodes
        self.imagined_transitions = 0  # dynamics steps in self-play searches and in the learner's unrolls

    # ----------------------------------------------------------------- the loop's agent interface
    def collect(self, env, steps: int, first_index: int, progress: bool) -> list[RealEpisode]:
        """Self-play >= `steps` real steps in muzero.search.num_envs envs (env seeds seed_fn(first_index + j))."""
        s = self.mz.search
        temperature = s.temperature(self.replay.num_steps / self.d.real_steps)
        gen = torch.Generator().manual_seed(self.seed_fn(first_index))
        counting = CountingModel(self.model)  # every search simulation steps the dynamics once per root
        policy = MuZeroPolicy(counting, s, greedy=False, temperature=temperature, generator=gen)
        envs = [make_pixel_env(self.env_cfg) for _ in range(s.num_envs)]
        try:
            episodes = collect_lockstep(envs, policy, steps, first_index, self.seed_fn, progress, "self-play")
        finally:
            for e in envs:
                e.close()
        # per episode (index order): visit distributions [N, A] and root values [N], the learner's targets
        self._pending.extend(policy.search_record(j) for j in range(len(episodes)))
        self.imagined_transitions += counting.transitions
        return episodes

    def train(self, replay: Replay, iteration: int, progress: bool) -> dict[str, list[float]]:
        """Sync the new episodes into the prioritised replay, then dream.model_updates updates per
        dream.collect_steps new real steps (a fixed replay ratio: self-play in parallel envs finishes whole
        episodes, so an iteration's new steps vary)."""
        before = self.replay.num_steps
        self._sync(replay)
        learn, s = self.mz.learn, self.mz.search
        updates = round(self.d.model_updates * (self.replay.num_steps - before) / self.d.collect_steps)
        logs: dict[str, list[float]] = {}
        for _ in tqdm(range(updates), desc="muzero updates", disable=not progress, leave=False):
            batch = self.replay.sample(learn.batch_size, learn.unroll_steps, learn.td_steps, s.discount,
                                       self.generator, self._target_value, next_windows=self.consistency)
            if learn.reanalyse_fraction > 0:
                self._reanalyse(batch)
            out, priorities = muzero_update(self.model.nets, self.optimizer, batch, learn)
            self.replay.update_priorities(batch.index, priorities)
            self.updates += 1
            self.imagined_transitions += learn.batch_size * learn.unroll_steps
            if self.updates % learn.target_update_interval == 0:
                self.target.load_state_dict(self.model.nets.state_dict())
            for k, v in out.items():
                logs.setdefault(k, []).append(v)
        return logs

    def eval_policy(self) -> MuZeroPolicy:
        return MuZeroPolicy(self.model, self.mz.search, greedy=True)

    def state_dict(self) -> dict:
        return {"nets": self.model.nets.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                "updates": self.updates, "replay": self.replay.state_dict()}

    def resume(self, replay: Replay, iteration: int, state: dict | None) -> None:
        """Restore a checkpoint taken after `iteration` iterations over `replay` (rolled back to it)."""
        if iteration == 0 or state is None:
            return
        self.model.nets.load_state_dict(state["nets"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.updates = int(state["updates"])
        stats = state["replay"]
        if len(stats["priorities"]) != len(replay.names):
            raise ValueError(f"agent checkpoint holds {len(stats['priorities'])} games, the replay "
                             f"{len(replay.names)} episodes: the run folder is inconsistent")
        self._pending = list(zip([p.numpy() for p in stats["policies"]], [v.numpy() for v in stats["root_values"]]))
        self._sync(replay, priorities=stats["priorities"])
        self.replay.max_priority = float(stats["max_priority"])

    # ----------------------------------------------------------------- internals
    def _sync(self, replay: Replay, priorities: list | None = None) -> None:
        """Games for the replay's episodes not yet in the prioritised replay, with the pending search records."""
        first = len(self.replay.games)
        new = range(first, len(replay.names))
        if len(new) != len(self._pending):
            raise ValueError(f"{len(new)} new episodes in the replay but {len(self._pending)} search records")
        for n, i in enumerate(new):
            if self.model.observation == "state":
                obs = torch.from_numpy(np.asarray(replay.store.arrays(i).state, np.float32))
            else:
                obs = replay.frames[i]
            policies, values = self._pending[n]
            N = len(replay.actions[i])
            pri = (priorities[n].clone() if priorities is not None
                   else torch.full((N,), self.replay.max_priority, dtype=torch.float32))
            self.replay.add(Game(obs, replay.actions[i], replay.rewards[i], bool(replay.terminated[i][-1]),
                                 torch.from_numpy(policies), torch.from_numpy(values), pri))
        self._pending = []

    @torch.no_grad()
    def _target_value(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The target network's value of observation windows [M, K, ...] -> [M] (bootstraps)."""
        from vidworld.world_models.muzero.support import support_to_scalar

        _, value_logits = self.target.predict(self.target.represent(obs, actions))
        return support_to_scalar(value_logits, self.target.value_support)

    def _reanalyse(self, batch) -> None:
        """Recompute the policy targets of the first reanalyse_fraction of the batch by a fresh search from
        the latest network at every unrolled position inside the game (EfficientZero's reanalyse)."""
        from vidworld.rl.muzero_replay import window

        rows = int(round(self.mz.learn.reanalyse_fraction * batch.obs.shape[0]))
        where, obs, acts = [], [], []
        for row, (gi, t) in enumerate(batch.index[:rows].tolist()):
            g = self.replay.games[gi]
            for k in range(batch.target_policies.shape[1]):
                if t + k < g.length:
                    o, a = window(g.obs, g.actions, t + k, self.model.context_length)
                    where.append((row, k))
                    obs.append(o)
                    acts.append(a)
        if not where:
            return
        from vidworld.planning.mcts_planner import mcts_policy

        s = self.mz.search
        with torch.no_grad():
            state = self.model.init(torch.stack(obs), torch.stack(acts))
            out = mcts_policy(self.model, state, s.num_simulations, value_fn=self.model.value,
                              prior_fn=self.model.policy_logits, discount=s.discount, pb_c_init=s.pb_c_init,
                              pb_c_base=s.pb_c_base)
        r, k = torch.tensor(where).T
        batch.target_policies[r, k] = out.action_weights
