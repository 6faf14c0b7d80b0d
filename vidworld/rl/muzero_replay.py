"""MuZero's replay: whole games with their search statistics, prioritised sampling, and the unrolled targets.

A game is one real episode: observations [N+1, ...] (states float [N+1, D] or frames uint8 [N+1, 3, S, S],
shared with the loop's Replay, never copied to disk twice), actions long [N], rewards float [N], whether it
ended by termination (else truncation), and what self-play recorded per step: the root visit distribution
(policy target) [N, A], the root search value [N], and the priority of each position [N].

Targets for a sample (game, t), unroll k = 0..K at position u = t + k (Schrittwieser et al. 2020, App. G;
muzero-general's `make_target`):
  value   z_u = sum_{i=u}^{b-1} gamma^(i-u) r_i + gamma^(b-u) V(o_b),  b = min(u + n, N)
          with no bootstrap when b = N and the game terminated (o_N is terminal, its value is 0). V comes from
          the target network at sampling time (fresh bootstraps: muzero-general's `use_last_model_value`).
          u > N: 0 after a termination; unknown after a truncation (masked out of the loss).
  reward  r_{u-1} for k >= 1 (0 past the end: the absorbing state).
  policy  the stored visit distribution for u < N, masked past the end (EfficientZero's mask).
  action  the real action for u < N, a uniformly random one past the end (muzero-general).
  next    (only when asked: EfficientZero's consistency loss) the observation window ending at u for k >= 1,
          where it exists (u <= N: the final observation o_N is stored); masked past the end.
Prioritised replay (Schaul et al. 2016, as MuZero App. G): position i is drawn with P(i) = p_i^alpha / sum
p^alpha, its loss weighted by (N_total P(i))^-beta / max; new positions get the largest priority seen, sampled
ones |V(o_t) - z_t| after each update.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class Game:
    """One real episode and its search statistics (see module docstring for shapes)."""

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    terminated: bool
    policies: Tensor
    root_values: Tensor
    priorities: Tensor

    @property
    def length(self) -> int:
        return int(self.actions.shape[0])


def value_target_plan(rewards: np.ndarray, terminated: bool, u: int, td_steps: int,
                      discount: float) -> tuple[float, int, float]:
    """For position u in 0..N of a game with rewards [N]: (discounted reward sum, bootstrap index b or -1,
    its coefficient gamma^(b-u)); z_u = sum + coef * V(o_b)."""
    N = len(rewards)
    b = min(u + td_steps, N)
    total = float(sum(rewards[i] * discount ** (i - u) for i in range(u, b)))
    if b == N and terminated:
        return total, -1, 0.0
    return total, b, discount ** (b - u)


def nstep_value_targets(rewards: np.ndarray, terminated: bool, values: np.ndarray, td_steps: int,
                        discount: float) -> np.ndarray:
    """z_u for every u in 0..N [N+1], given values V(o_0..o_N) [N+1] to bootstrap from."""
    out = []
    for u in range(len(rewards) + 1):
        total, b, coef = value_target_plan(rewards, terminated, u, td_steps, discount)
        out.append(total + (coef * values[b] if b >= 0 else 0.0))
    return np.asarray(out, np.float64)


def window(obs: Tensor, actions: Tensor, pos: int, K: int) -> tuple[Tensor, Tensor]:
    """The K observations ending at `pos` of a sequence obs [T, ...] with actions [>= T-1], and the K-1 actions
    between them -> ([K, ...], long [K-1]). Before the first observation: the first one repeated with action 0
    (how the acting policies pad an episode start)."""
    idx = torch.arange(pos - K + 1, pos + 1)
    o = obs[idx.clamp_min(0)]
    a_idx = idx[:-1]
    a = torch.where(a_idx >= 0, actions[a_idx.clamp_min(0)] if actions.numel() else torch.zeros_like(a_idx),
                    torch.zeros_like(a_idx))
    return o, a.long()


def windows(obs: Tensor, actions: Tensor, pos: Tensor, K: int) -> tuple[Tensor, Tensor]:
    """`window` at several positions pos long [M] -> ([M, K, ...], long [M, K-1])."""
    idx = pos[:, None] + torch.arange(-K + 1, 1)  # [M, K]
    o = obs[idx.clamp_min(0)]
    a_idx = idx[:, :-1]
    if not actions.numel():
        return o, torch.zeros_like(a_idx)
    return o, torch.where(a_idx >= 0, actions[a_idx.clamp_min(0)], torch.zeros_like(a_idx)).long()


@dataclass
class Batch:
    """B samples, unroll U: obs [B, K, ...], context_actions long [B, K-1], actions long [B, U],
    target_values [B, U+1], value_mask [B, U+1] bool, target_rewards [B, U], target_policies [B, U+1, A],
    policy_mask [B, U+1] bool, weights [B] (importance sampling), index long [B, 2] (game, position).
    Only when sampled with next_windows (the consistency loss): next_obs [B, U, K, ...] and
    next_context_actions long [B, U, K-1], the windows ending at t+1..t+U, and next_mask [B, U] bool
    (t+k <= N: the window exists; past the end it repeats the window at N)."""

    obs: Tensor
    context_actions: Tensor
    actions: Tensor
    target_values: Tensor
    value_mask: Tensor
    target_rewards: Tensor
    target_policies: Tensor
    policy_mask: Tensor
    weights: Tensor
    index: Tensor
    next_obs: Tensor | None = None
    next_context_actions: Tensor | None = None
    next_mask: Tensor | None = None


class MuZeroReplay:
    def __init__(self, num_actions: int, context_length: int, alpha: float, beta: float):
        self.A, self.K, self.alpha, self.beta = num_actions, context_length, alpha, beta
        self.games: list[Game] = []
        self.max_priority = 1.0
        self._plan_cache: dict[tuple, tuple[Tensor, Tensor, Tensor]] = {}

    def add(self, game: Game) -> None:
        self.games.append(game)

    @property
    def num_steps(self) -> int:
        return sum(g.length for g in self.games)

    def sample_positions(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """n (game, position) pairs [n, 2] drawn by priority, and their normalised IS weights [n]."""
        pri = torch.cat([g.priorities for g in self.games]).double() ** self.alpha
        probs = pri / pri.sum()
        flat = torch.multinomial(probs, n, replacement=True, generator=generator)
        lengths = torch.tensor([g.length for g in self.games])
        offsets = torch.cumsum(lengths, 0) - lengths
        game = torch.searchsorted(offsets, flat, right=True) - 1
        w = (len(probs) * probs[flat]) ** (-self.beta)
        return torch.stack([game, flat - offsets[game]], 1), (w / w.max()).float()

    def sample(self, n: int, unroll: int, td_steps: int, discount: float, generator: torch.Generator,
               value_fn: Callable[[Tensor, Tensor], Tensor], next_windows: bool = False) -> Batch:
        """A training batch (see Batch); value_fn(obs [M, K, ...], actions [M, K-1]) -> [M] bootstraps.
        next_windows: also gather the windows at t+1..t+U (no extra random draws either way)."""
        index, weights = self.sample_positions(n, generator)
        A, K, U = self.A, self.K, unroll
        obs, ctx = [], []
        actions = torch.randint(0, A, (n, U), generator=generator)  # kept past the end of a game
        z = torch.zeros(n, U + 1)
        vmask = torch.ones(n, U + 1, dtype=torch.bool)
        rewards = torch.zeros(n, U)
        policies = torch.full((n, U + 1, A), 1.0 / A)
        pmask = torch.zeros(n, U + 1, dtype=torch.bool)
        boot_obs, boot_act, boot_rows, boot_ks, boot_coef = [], [], [], [], []
        next_obs, next_ctx, next_mask = [], [], []
        ks = torch.arange(U + 1)
        for row, (gi, t) in enumerate(index.tolist()):
            g = self.games[gi]
            N = g.length
            total, boot, coef = self._plans(gi, td_steps, discount)
            o, a = windows(g.obs, g.actions, torch.tensor([t]), K)
            obs.append(o[0])
            ctx.append(a[0])
            u = t + ks  # [U+1]
            inside = u < N
            actions[row, : int(inside[:U].sum())] = g.actions[u[:U][inside[:U]]]
            r_pos = u[1:] - 1
            rewards[row, r_pos < N] = g.rewards[r_pos[r_pos < N]]
            policies[row, inside] = g.policies[u[inside]]
            pmask[row] = inside
            upto = u <= N
            if next_windows:
                no, na = windows(g.obs, g.actions, u[1:].clamp(max=N), K)  # [U, K, ...], [U, K-1]
                next_obs.append(no)
                next_ctx.append(na)
                next_mask.append(upto[1:])
            vmask[row, ~upto] = g.terminated  # 0 after a termination; unknown after a truncation
            z[row, upto] = total[u[upto]]
            b = boot[u[upto]]
            has = b >= 0
            if bool(has.any()):
                bo, ba = windows(g.obs, g.actions, b[has], K)
                boot_obs.append(bo)
                boot_act.append(ba)
                boot_rows.append(torch.full((int(has.sum()),), row))
                boot_ks.append(ks[upto][has])
                boot_coef.append(coef[u[upto]][has])
        if boot_obs:
            values = value_fn(torch.cat(boot_obs), torch.cat(boot_act)).float().cpu()
            z[torch.cat(boot_rows), torch.cat(boot_ks)] += torch.cat(boot_coef) * values
        batch = Batch(torch.stack(obs), torch.stack(ctx), actions, z, vmask, rewards, policies, pmask,
                      weights, index)
        if next_windows:
            batch.next_obs, batch.next_context_actions = torch.stack(next_obs), torch.stack(next_ctx)
            batch.next_mask = torch.stack(next_mask)
        return batch

    def _plans(self, gi: int, td_steps: int, discount: float) -> tuple[Tensor, Tensor, Tensor]:
        """Game gi's value_target_plan for every u in 0..N: (reward sums [N+1], bootstrap index [N+1] long,
        coefficient [N+1]); cached per game (a game never changes once added)."""
        key = (gi, td_steps, discount)
        if key not in self._plan_cache:
            g = self.games[gi]
            rew = g.rewards.double().numpy()
            plans = [value_target_plan(rew, g.terminated, u, td_steps, discount) for u in range(g.length + 1)]
            total, boot, coef = zip(*plans)
            self._plan_cache[key] = (torch.tensor(total, dtype=torch.float32), torch.tensor(boot),
                                     torch.tensor(coef, dtype=torch.float32))
        return self._plan_cache[key]

    def update_priorities(self, index: Tensor, priorities: Tensor) -> None:
        """New priorities [B] (|V - z| at the sampled positions); duplicates: the last one wins."""
        for (gi, t), p in zip(index.tolist(), priorities.tolist()):
            self.games[gi].priorities[t] = p
        self.max_priority = max(self.max_priority, float(priorities.max()))

    def state_dict(self) -> dict:
        """Search statistics and priorities of every game (observations/actions/rewards are the episode
        store's: the loop reopens them)."""
        return {"max_priority": self.max_priority,
                "policies": [g.policies for g in self.games], "root_values": [g.root_values for g in self.games],
                "priorities": [g.priorities for g in self.games]}
