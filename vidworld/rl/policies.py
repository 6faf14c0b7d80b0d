"""Acting policies for the real env (the `Policy` protocol of rl/evaluate.py): the learned actor on the
world model's features, and the MPC planner. Both keep the last K real frames (padding an episode start by
repeating its first frame with action 0, as training pads) and build the model state from them."""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from vidworld.protocol import Filtering, WorldModel


class ContextTracker:
    """The model state of the real history: `init` on the padded first frame, then `observe` per real step
    (Filtering models: one frame encoded per step) or `init` on the last K frames (others)."""

    def __init__(self, model: WorldModel):
        self.model, self.K = model, model.context_length
        self.frames: deque = deque(maxlen=self.K)
        self.actions: deque = deque(maxlen=max(self.K - 1, 1))
        self.state = None

    def reset(self, obs: np.ndarray) -> None:
        frame = torch.from_numpy(np.array(obs, copy=True)).permute(2, 0, 1)
        self.frames = deque([frame] * self.K, maxlen=self.K)
        self.actions = deque([0] * (self.K - 1), maxlen=max(self.K - 1, 1))
        self.state = self._init()

    def _init(self):
        dev = self.model.device
        frames = torch.stack(list(self.frames))[None].to(dev)
        actions = torch.tensor(list(self.actions)[: self.K - 1], dtype=torch.long, device=dev)[None]
        return self.model.init(frames, actions)

    def step(self, action: int, obs: np.ndarray) -> None:
        frame = torch.from_numpy(np.array(obs, copy=True)).permute(2, 0, 1)
        self.frames.append(frame)
        if self.K > 1:
            self.actions.append(int(action))
        if isinstance(self.model, Filtering):
            dev = self.model.device
            self.state = self.model.observe(self.state, torch.tensor([int(action)], device=dev), frame[None].to(dev))
        else:
            self.state = self._init()


class ActorPolicy:
    """The actor-critic's actor on `model.features` of the real history. greedy: the most likely action
    (evaluation); else a sample drawn from a generator seeded with the episode's seed (collection: the same
    episode number always gets the same noise, which makes a resumed online loop collect the same data)."""

    def __init__(self, model: WorldModel, agent, greedy: bool):
        # the actor reads features only: a model that can skip its pixel anchor (the diffusion model's VAE decode
        # of every real frame, half of a decision's cost) does
        view = getattr(model, "without_pixel_anchor", None)
        self.tracker, self.agent, self.greedy = ContextTracker(view() if view else model), agent, greedy
        self.generator: torch.Generator | None = None
        self._last: int | None = None

    def reset(self, obs: np.ndarray, seed: int) -> None:
        self.tracker.reset(obs)
        self.generator = None if self.greedy else torch.Generator(device=self.agent.device).manual_seed(seed)
        self._last = None

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> int:
        if self._last is not None:
            self.tracker.step(self._last, obs)
        feats = self.tracker.model.features(self.tracker.state)
        self._last = int(self.agent.act(feats, greedy=self.greedy, generator=self.generator)[0])
        return self._last


class PlannerPolicy:
    """The MPC agent (planning/agent.py) behind the harness's Policy protocol; `frame_panel` (the harness's
    RecordsPanel) shows the planner's imagined best future at steps {1, H/2, H} ahead of the real frame."""

    def __init__(self, model: WorldModel, planner, precision: str = "auto"):
        self.model, self.planner, self.precision = model, planner, precision
        self.agent = None
        self.generator: torch.Generator | None = None

    def reset(self, obs: np.ndarray, seed: int) -> None:
        from vidworld.planning.agent import MPCAgent

        self.agent = MPCAgent(self.model, self.planner)
        self.agent.reset(obs.transpose(2, 0, 1))
        self.generator = torch.Generator(device=self.model.device).manual_seed(seed)

    def act(self, obs: np.ndarray) -> int:
        from vidworld.precision import inference_autocast

        with inference_autocast(self.model.device, self.precision):
            return int(self.agent.act(obs.transpose(2, 0, 1), generator=self.generator))

    @torch.no_grad()
    def frame_panel(self, obs: np.ndarray) -> np.ndarray:
        """uint8 [H, W', 3]: the last plan's imagined frames [Hz, 3, H, W] at 1, Hz/2 and Hz steps ahead,
        left to right with 2-px white separators (decoded only when the harness records this episode)."""
        imagined = self.agent.imagined_frames().cpu()  # needs a PixelDecoder model; the error says so
        horizon = self.agent.last_plan.latents.shape[0]
        picks = sorted({1, max(1, horizon // 2), horizon})
        tiles = [imagined[min(p, len(imagined)) - 1].permute(1, 2, 0).numpy() for p in picks]
        sep = np.full((tiles[0].shape[0], 2, 3), 255, np.uint8)
        return np.concatenate([x for t in tiles for x in (t, sep)][:-1], axis=1)


class LockstepPlannerPolicy:
    """The MPC planner acting in several real episodes at once (the harness's BatchPolicy, and lockstep
    collection, rl/collect.py): per episode the last K real frames (an episode start padded as ContextTracker
    pads it) and the planner's warm-start memory; per step ONE `model.init` of every running episode's context
    and ONE `planner.plan_batch` over all roots (CEM/MPPI: roots x candidates x noise samples in one
    `model.step` per horizon step; MCTS: one batched search). The same planner as `PlannerPolicy`, with the
    model's per-call cost shared by every episode instead of paid per decision.

    Noise: one generator for all episodes, seeded by the caller, or else at the first `start` with that
    episode's seed (the harness's episode 0), so a given set of episodes is always played the same way.
    """

    observation = "pixels"

    def __init__(self, model: WorldModel, planner, precision: str = "auto",
                 generator: torch.Generator | None = None):
        if model.action_spec.kind != "discrete":  # the real envs the loop and harness step take int actions
            raise ValueError(f"LockstepPlannerPolicy needs a discrete-action model, got {model.action_spec.kind!r}")
        self.model, self.planner, self.precision, self.generator = model, planner, precision, generator
        self.K = model.context_length
        self.frames: dict[int, deque] = {}
        self.actions: dict[int, deque] = {}
        self.memory: dict[int, object] = {}  # episode -> the planner's last final distribution (None at start)
        self.last: dict[int, int | None] = {}

    def start(self, episode: int, obs: np.ndarray, seed: int | None = None) -> None:
        if self.generator is None:
            self.generator = torch.Generator(device=self.model.device).manual_seed(0 if seed is None else seed)
        frame = torch.from_numpy(np.array(obs, copy=True)).permute(2, 0, 1)
        self.frames[episode] = deque([frame] * self.K, maxlen=self.K)
        self.actions[episode] = deque([0] * (self.K - 1), maxlen=max(self.K - 1, 1))
        self.memory[episode], self.last[episode] = None, None

    @torch.no_grad()
    def act_many(self, obs: dict[int, np.ndarray]) -> dict[int, int]:
        from vidworld.precision import inference_autocast

        for j in [j for j in self.frames if j not in obs]:  # every running episode is asked: the rest ended
            del self.frames[j], self.actions[j], self.memory[j], self.last[j]
        order = sorted(obs)
        for j in order:
            if self.last[j] is not None:  # the outcome of the action taken at the previous call
                self.frames[j].append(torch.from_numpy(np.array(obs[j], copy=True)).permute(2, 0, 1))
                if self.K > 1:
                    self.actions[j].append(self.last[j])
        dev = self.model.device
        frames = torch.stack([torch.stack(list(self.frames[j])) for j in order]).to(dev)  # [E, K, 3, H, W]
        actions = torch.tensor([list(self.actions[j])[: self.K - 1] for j in order], dtype=torch.long,
                               device=dev).view(len(order), self.K - 1)
        with inference_autocast(dev, self.precision):
            state = self.model.init(frames, actions)
            chosen, memory = self.planner.plan_batch(state, [self.memory[j] for j in order], self.generator)
        for j, a, m in zip(order, chosen, memory):
            self.last[j], self.memory[j] = int(a), m
        return {j: self.last[j] for j in order}


def observation_of(observation: str, obs: np.ndarray, info: dict) -> np.ndarray:
    """What a policy acting on `observation` ("pixels" | "state") sees of a real step: the frame uint8
    [H, W, 3], or the env's low-dimensional state info["state"] float32 [d]."""
    if observation == "pixels":
        return obs
    if info.get("state") is None:
        raise ValueError("observation 'state' needs an env whose info carries 'state' (classic control, ALE RAM, "
                         "MiniGrid); this env's info has none")
    return np.asarray(info["state"], np.float32)


class MuZeroPolicy:
    """MuZero acting in several real episodes at once (the harness's BatchPolicy, and self-play): per episode
    the history of observations and actions, whose last K (padded at the start like ContextTracker) the
    representation encodes; then one batched MCTS over all roots (`mcts_policy` with the model's prediction
    function as prior and value).

    greedy: evaluation (no root noise, most visited action). Otherwise self-play: Dirichlet root noise and
    actions sampled from visits ** (1 / temperature) with `generator`; `search_record(j)` returns episode j's
    visit distributions [N, A] and root values [N] (and forgets the episode).
    """

    def __init__(self, model, search_cfg, greedy: bool, temperature: float = 1.0,
                 generator: torch.Generator | None = None):
        self.model, self.cfg, self.greedy = model, search_cfg, greedy
        self.observation = model.observation
        self.temperature, self.generator = temperature, generator
        self.sims = (search_cfg.eval_simulations or search_cfg.num_simulations) if greedy else search_cfg.num_simulations
        self.history: dict[int, tuple[list, list]] = {}
        self.records: dict[int, tuple[list, list]] = {}

    def start(self, episode: int, obs: np.ndarray, seed: int | None = None) -> None:
        self.history[episode] = ([torch.as_tensor(self._obs(obs))], [])
        self.records[episode] = ([], [])

    def _obs(self, obs: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.array(obs, copy=True))
        return x.permute(2, 0, 1) if self.observation == "pixels" else x.float()

    @torch.no_grad()
    def act_many(self, obs: dict[int, np.ndarray]) -> dict[int, int]:
        """The current observation of each running episode -> its action (one search for all)."""
        from vidworld.planning.mcts_planner import mcts_policy
        from vidworld.rl.muzero_replay import window

        order = list(obs)
        windows, acts = [], []
        for j in order:
            seen, actions = self.history[j]
            if len(seen) == len(actions):  # an action was taken since the last call: this is its outcome
                seen.append(self._obs(obs[j]))
            o, a = window(torch.stack(seen), torch.tensor(actions, dtype=torch.long), len(seen) - 1,
                          self.model.context_length)
            windows.append(o)
            acts.append(a)
        dev = self.model.device
        state = self.model.init(torch.stack(windows).to(dev), torch.stack(acts).to(dev))
        c = self.cfg
        noise = 0.0 if self.greedy else c.dirichlet_fraction
        out = mcts_policy(self.model, state, self.sims, value_fn=self.model.value,
                          prior_fn=self.model.policy_logits, discount=c.discount, generator=self.generator,
                          pb_c_init=c.pb_c_init, pb_c_base=c.pb_c_base, dirichlet_alpha=c.dirichlet_alpha,
                          dirichlet_fraction=noise, temperature=0.0 if self.greedy else self.temperature)
        result = {}
        for row, j in enumerate(order):
            a = int(out.action[row])
            self.history[j][1].append(a)
            if not self.greedy:
                self.records[j][0].append(out.action_weights[row].numpy())
                self.records[j][1].append(float(out.root_value[row]))
            result[j] = a
        return result

    def search_record(self, episode: int) -> tuple[np.ndarray, np.ndarray]:
        policies, values = self.records.pop(episode)
        self.history.pop(episode, None)
        return np.stack(policies).astype(np.float32), np.asarray(values, np.float32)
