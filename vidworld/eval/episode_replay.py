"""Ground truth for counterfactual actions on envs replayed from the start of an episode (ALE, MiniGrid).

ALE and MiniGrid have no low-dimensional state that can be set (`replay.StateReplay` handles classic
control), but they replay exactly: at collection time each episode stores `episode_start`, a snapshot taken
at its reset (ALE: the emulator state *with its random generator*, so sticky actions repeat the same way;
MiniGrid: the env's generator before the grid was drawn; `vidworld.envs.pixels`). To branch at frame f of
an episode we restore that snapshot, step the recorded actions 0..f-1, check that the frame reached is the
recorded frame f (bit-exact: frames are stored losslessly), then step any actions and render.

Why not one snapshot per frame: an ALE snapshot with its generator is ~14 KB, as much as ~30 frames of the
episode's video; one per episode costs 1-2% of a dataset, and re-stepping a prefix runs at ~2000 steps/s.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from vidworld.envs.pixels import PixelEnvConfig, make_pixel_env


class ReplayMismatch(ValueError):
    """The replayed env did not reproduce a recorded frame (other env settings or emulator version)."""


@dataclass(frozen=True)
class BranchPoint:
    """Where to branch a recorded episode: restore `start` (uint8 [n], the episode's `episode_start`), step
    `prefix` (the recorded actions [f] from frame 0), and expect `frame` (uint8 [3, S, S], recorded frame f).
    `name` only labels errors."""

    start: np.ndarray
    prefix: np.ndarray
    frame: Tensor
    name: str = ""


class EpisodeReplay:
    """replay(points, actions [B, H]) -> real frames uint8 [B, H, 3, S, S]; frame t follows actions[:, t],
    taken at each point's branch frame. Raises ReplayMismatch if a branch frame is not reproduced."""

    def __init__(self, env_cfg: PixelEnvConfig):
        self.env_id = env_cfg.id
        self.env = make_pixel_env(env_cfg, seed=0)
        space = self.env.action_space
        if not hasattr(space, "n"):
            raise ValueError(f"episode replay steps discrete actions; {env_cfg.id} has {space}")
        self.num_actions = int(space.n)
        self.env.reset(seed=0)

    def __call__(self, points: list[BranchPoint], actions: Tensor) -> Tensor:
        if actions.dim() != 2 or actions.shape[0] != len(points):
            raise ValueError(f"replaying {self.env_id}: actions must be [B={len(points)}, H], got "
                             f"{tuple(actions.shape)}")
        if actions.numel() and not (0 <= int(actions.min()) and int(actions.max()) < self.num_actions):
            raise ValueError(f"replaying {self.env_id}: actions span {int(actions.min())}..{int(actions.max())}, "
                             f"the env takes 0..{self.num_actions - 1}")
        s = self.env.frame_size
        out = np.empty((actions.shape[0], actions.shape[1], s, s, 3), np.uint8)
        base = self.env.unwrapped  # no wrapper counters (time limits) between us and the simulator
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # stepping past a terminal state is what we want here
            for b, point in enumerate(points):
                self.env.restore_episode_start(point.start)
                for a in np.asarray(point.prefix).reshape(-1):
                    base.step(int(a))
                reached = torch.from_numpy(self.env._frame()).permute(2, 0, 1)
                if not torch.equal(reached, point.frame.cpu()):
                    raise ReplayMismatch(
                        f"replaying {self.env_id} episode {point.name or b}: frame {len(point.prefix)} differs from "
                        f"the recorded one ({int((reached != point.frame.cpu()).any(0).sum())} pixels); were the "
                        "episodes collected with other env settings or another ale-py/minigrid version?")
                for t in range(actions.shape[1]):
                    base.step(int(actions[b, t]))
                    out[b, t] = self.env._frame()
        return torch.from_numpy(out).permute(0, 1, 4, 2, 3).contiguous()

    def close(self) -> None:
        self.env.close()
