"""MPCAgent: act in a real environment by replanning in a world model from the real recent history.

Every step the agent rebuilds the model state from the last K real frames and the K-1 actions between
them (`model.init(context)`, K = model.context_length) and asks the planner for an action, warm-started from
its previous plan. Rebuilding from real frames each step (rather than stepping the model alongside the
env) keeps imagination errors from accumulating: the model only ever has to be right `horizon` steps
ahead of reality (MPC with a learned model, as in PlaNet / DIAMOND's evaluation).

Context convention (the protocol's, as in DIAMOND): `context_actions[:, i]` is the action taken at
`context_frames[:, i]`, leading to frame i + 1; the planner supplies the action at the newest frame. At
`reset` there is no history yet, so the context is padded by repeating the first frame K times with action 0
between the copies: the model sees a standstill history of the right length instead of a special case
(the same padding a model trained on episode starts would see).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
from torch import Tensor

from vidworld.planning.cem import PlanResult
from vidworld.protocol import PixelDecoder


def _as_frame(frame) -> Tensor:
    """A single frame as uint8 [3, H, W]; numpy or torch accepted, channels first."""
    t = torch.as_tensor(np.array(frame)) if not isinstance(frame, Tensor) else frame
    if t.dtype != torch.uint8 or t.dim() != 3 or t.shape[0] != 3:
        hint = (
            " (looks like [H, W, 3]: pass frame.transpose(2, 0, 1))"
            if t.dim() == 3 and t.shape[-1] == 3
            else ""
        )
        raise ValueError(f"frames must be uint8 [3, H, W], got {t.dtype} {tuple(t.shape)}{hint}")
    return t


class MPCAgent:
    """Receding-horizon control with any planner having `reset()` and `plan(state, generator) -> PlanResult`.

    Loop:
        obs, _ = env.reset(); agent.reset(obs)
        while not done:
            action = agent.act(obs, generator)       # obs: the env's CURRENT frame, uint8 [3, H, W]
            obs, reward, terminated, truncated, _ = env.step(action)

    `act(frame)` appends `frame` to the context together with the previous action, except on the first call
    after `reset` (that frame is already the context; passing it again, or None, is fine).
    With `record=True`, `plans` keeps every PlanResult (its `latents` [H, ...] are the planner's imagined
    best future) and `imagined_frames(i)` decodes one of them for visualisation.
    """

    def __init__(self, model, planner, record: bool = False):
        self.model = model
        self.planner = planner
        self.record = record
        self.K = int(model.context_length)
        if self.K < 1:
            raise ValueError(f"model.context_length must be >= 1, got {self.K}")
        self.frames: deque[Tensor] = deque(maxlen=self.K)
        self.actions: deque[Tensor] = deque(maxlen=self.K - 1)  # actions[i] taken at frames[i]
        spec = model.action_spec
        self.discrete = spec.kind == "discrete"
        # "Action 0" padding: id 0, or a zero vector for continuous models.
        self._pad_action = torch.zeros((), dtype=torch.long) if self.discrete else torch.zeros(spec.shape)
        self.plans: list[PlanResult] = []
        self.last_plan: PlanResult | None = None
        self._roots: list = []  # the model state each recorded plan started from
        self._last_action: int | Tensor | None = None

    def reset(self, first_frame) -> None:
        """Start an episode: first_frame repeated K times, action 0 between copies (see module docstring)."""
        f = _as_frame(first_frame)
        self.frames.clear()
        self.actions.clear()
        for _ in range(self.K):
            self.frames.append(f)
            self.actions.append(self._pad_action)  # the deque keeps K-1 of them
        self._last_action = None
        self.plans = []
        self.last_plan = None
        self._roots = []
        self.planner.reset()

    def observe(self, frame, action: int | Tensor) -> None:
        """Push a real transition: `action` was taken at the newest frame and `frame` [3, H, W] followed."""
        f = _as_frame(frame)
        if self.frames and f.shape != self.frames[-1].shape:
            raise ValueError(f"frame shape changed from {tuple(self.frames[-1].shape)} to {tuple(f.shape)}")
        self.frames.append(f)
        self.actions.append(
            torch.as_tensor(action, dtype=self._pad_action.dtype).reshape(self._pad_action.shape)
        )

    def context(self) -> tuple[Tensor, Tensor]:
        """The model's input: frames uint8 [1, K, 3, H, W], actions long [1, K-1] (float [1, K-1, *shape])."""
        if not self.frames:
            raise RuntimeError("call reset(first_frame) before act()")
        pad = self._pad_action
        actions = torch.stack(list(self.actions)) if self.actions else pad.new_zeros((0, *pad.shape))
        return torch.stack(list(self.frames))[None], actions[None]

    def act(self, frame=None, generator: torch.Generator | None = None):
        """Plan from the real context and return the action to execute (int, or a tensor for continuous)."""
        if frame is not None and self._last_action is not None:
            self.observe(frame, self._last_action)
        frames, actions = self.context()
        state = self.model.init(frames, actions)
        result = self.planner.plan(state, generator)
        self.last_plan = result
        if self.record:
            self.plans.append(result)
            self._roots.append(state)
        else:
            self._roots = [state]
        self._last_action = result.action
        return result.action

    def imagined_frames(self, index: int = -1) -> Tensor:
        """Decode the imagined best future of recorded plan `index`: uint8 [H, 3, H_img, W_img]."""
        plans = self.plans if self.record else [p for p in [self.last_plan] if p is not None]
        if not plans:
            raise RuntimeError("no plan recorded yet (act() first; record=True keeps all of them)")
        latents = plans[index].latents
        if not isinstance(self.model, PixelDecoder):
            raise ValueError(f"imagined_frames() needs a model that decodes frames; {type(self.model).__name__} "
                             "is not a PixelDecoder")
        return self.model.decode_from(self._roots[index], latents)  # relative to the real frame it started from
