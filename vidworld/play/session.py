"""One browser tab's play state, server-side: the world-model state, the rollout so far, the tab's options.

No web code here: `PlaySession` is plain Python the server calls from its model thread (and tests call
directly). Every imagined step is one batch-1 `model.step` + `model.decode` under `torch.no_grad` and
`inference_autocast(device, precision)` (bf16 where the CPU has it natively).

Models are shared by all sessions (`ModelCache`): the loaded folder, plus the same folder reloaded through
`load_world_model(path, sampler_steps=n)` for each sampler-steps setting a tab asks for — the loader's
load-time override is how a kind declares that knob, so kinds without it (copy-last, later RSSM) simply
have none. A state made by one setting steps under another (same networks, same weights).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import tempfile
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidworld.data.store import EpisodeStore
from vidworld.envs.world_model_env import ContextSource, context_tensors
from vidworld.play.real_env import RealMirror, env_config, replay_unavailable
from vidworld.play.uploads import decode_context
from vidworld.precision import inference_autocast, resolve_precision
from vidworld.protocol import PixelDecoder, WorldModel
from vidworld.world_models import load_world_model, model_kind
from vidworld.world_models.registry import model_class

MAX_SAMPLER_STEPS = 32
MAX_ROLLOUT_FRAMES = 1500  # frames kept for "download this rollout" (the newest ones); 18 MB at 64x64
MIN_VIDEO_SIDE = 256  # downloaded videos are upscaled (nearest) to at least this many pixels a side


def load_overrides(path: str | os.PathLike) -> list[str]:
    """The load-time overrides the folder's kind accepts (what `load_world_model(path, **overrides)` takes)."""
    params = inspect.signature(model_class(model_kind(path)).from_pretrained).parameters
    return [name for name in params if name not in ("path", "device")]


class ModelCache:
    """The world model of folder `path` at each sampler-steps setting (None: as saved), loaded on demand."""

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu", keep: int = 4):
        self.path, self.device, self.keep = Path(path), device, keep
        self.base: WorldModel = load_world_model(path, device=device)
        if not isinstance(self.base, PixelDecoder):
            raise ValueError(f"{path}: a {type(self.base).__name__} does not decode frames; play needs a pixel "
                             "world model (a PixelDecoder)")
        if self.base.action_spec.kind != "discrete":
            raise ValueError(f"{path}: play supports discrete actions only; the model's are {self.base.action_spec}")
        self.kind = model_kind(path)
        self.has_sampler_steps = "sampler_steps" in load_overrides(path)
        self._loaded: OrderedDict[int, WorldModel] = OrderedDict()

    def get(self, sampler_steps: int | None) -> WorldModel:
        if sampler_steps is None:
            return self.base
        if not self.has_sampler_steps:
            raise ValueError(f"a {self.kind} world model has no sampler steps to set")
        if isinstance(sampler_steps, bool) or not isinstance(sampler_steps, int) or not (
                1 <= sampler_steps <= MAX_SAMPLER_STEPS):
            raise ValueError(f"sampler steps must be an integer in 1..{MAX_SAMPLER_STEPS}, got {sampler_steps!r}")
        if sampler_steps not in self._loaded:
            self._loaded[sampler_steps] = load_world_model(self.path, device=self.device, sampler_steps=sampler_steps)
            while len(self._loaded) > self.keep:
                self._loaded.popitem(last=False)
        self._loaded.move_to_end(sampler_steps)
        return self._loaded[sampler_steps]


@dataclass(frozen=True)
class Context:
    """frames uint8 [K, 3, S, S], actions long [K-1]; `where` = (store episode, start frame) of a dataset
    window, None for uploaded images; `source` says where it came from, for the page."""

    frames: torch.Tensor
    actions: torch.Tensor
    source: str
    where: tuple[int, int] | None = None


class DatasetContexts:
    """Random real contexts from the model's dataset (or `dataset`), and their recorded simulator states.

    The dataset is opened on the first reset; its episode store a second time only when a tab asks for the
    real env (states, env id and collect settings are read from it)."""

    def __init__(self, model: WorldModel, dataset: str | os.PathLike | None = None):
        self.model = model
        self.windows = ContextSource(model, dataset)
        self._store: EpisodeStore | None = None

    def sample(self, rng: np.random.Generator) -> Context:
        frames, actions, where = self.windows.sample(rng, 1)
        ep, start = int(where[0, 0]), int(where[0, 1])
        K = self.model.context_length
        return Context(frames[0], actions[0], f"dataset episode {ep}, frames {start}..{start + K - 1}", (ep, start))

    def store(self) -> EpisodeStore:
        if self._store is None:
            if self.windows.path is None:
                raise ValueError("the model records no dataset")
            self._store = EpisodeStore.open(self.windows.path, skip_corrupt=True)  # ContextSource's order
        return self._store

    def mirror(self, ctx: Context) -> RealMirror:
        """The real env in the recorded state of the context's newest frame (ValueError saying why not)."""
        if ctx.where is None:
            raise ValueError(f"cannot replay the real env: {replay_unavailable(None, None)}")
        store = self.store()
        ep, start = ctx.where
        states = store.arrays(ep).state
        state = None if states is None else states[start + self.model.context_length - 1]
        env_id = store.env_id or self.model.meta.get("env_id")
        reason = replay_unavailable(env_id, state)
        if reason is not None:
            raise ValueError(f"cannot replay the real env: {reason}")
        return RealMirror(env_config(env_id, self.model.frame_size, store.meta.get("collect")), state)


@dataclass(frozen=True)
class RealView:
    """The real env's frame uint8 [S, S, 3] after the same actions; its reward of the last step (None after
    a reset), whether it has terminated since the context, and its return so far."""

    frame: np.ndarray
    reward: float | None
    terminated: bool
    total_reward: float


@dataclass(frozen=True)
class View:
    """What the page shows after a reset or a step. frame: uint8 [S, S, 3]; reward / terminated /
    termination_prob: the model's predictions for the last step (None after a reset)."""

    step: int
    frame: np.ndarray
    reward: float | None
    terminated: bool | None
    termination_prob: float | None
    total_reward: float
    model_ms: float
    source: str
    real: RealView | None = None


def _hwc(frame: torch.Tensor) -> np.ndarray:
    """uint8 [3, S, S] tensor -> a fresh uint8 [S, S, 3] array."""
    return frame.permute(1, 2, 0).contiguous().cpu().numpy()


class PlaySession:
    """One tab: reset to a context, step with actions, options; its rollout for download."""

    def __init__(self, models: ModelCache, contexts: DatasetContexts, precision: str = "auto",
                 seed: int | None = None, max_frames: int = MAX_ROLLOUT_FRAMES):
        self.models, self.contexts = models, contexts
        self.precision = resolve_precision(precision, models.base.device)
        self.rng = np.random.default_rng(seed)
        self.model: WorldModel = models.base
        self.sampler_steps: int | None = None
        self.real_on = False
        self.max_frames = max_frames
        self.context: Context | None = None
        self.state: Any = None
        self._view: View | None = None
        self._mirror: RealMirror | None = None
        self._real: RealView | None = None

    # ------------------------------------------------------------------------------------------- contexts
    def reset(self, seed: int | None = None) -> View:
        """Start over from a random real context of the dataset (`seed`: which one, and the sampler noise)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        return self._start(self.contexts.sample(self.rng))

    def upload(self, images: list, actions: list | None = None) -> View:
        """Start over from 1..K uploaded images (data URLs) and the K-1 actions between them (default 0s)."""
        K = self.model.context_length
        frames = decode_context(images, K, self.model.frame_size)
        acts = np.zeros(K - 1, np.int64) if actions is None else actions
        f, a = context_tensors(frames, acts, self.model)
        return self._start(Context(f[0], a[0], f"{len(images)} uploaded image(s)"))

    def _start(self, ctx: Context) -> View:
        t0 = time.perf_counter()
        self.generator = torch.Generator(device=self.model.device).manual_seed(int(self.rng.integers(2**63)))
        with torch.no_grad(), inference_autocast(self.model.device, self.precision):
            self.state = self.model.init(ctx.frames[None].to(self.model.device), ctx.actions[None].to(self.model.device))
        self.context = ctx
        self.actions: list[int] = []
        self.frames: deque[np.ndarray] = deque((_hwc(f) for f in ctx.frames), maxlen=self.max_frames)
        self.total_reward = 0.0
        self._close_mirror()
        if self.real_on:
            try:
                self._open_mirror()
            except ValueError:
                self.real_on = False  # this context cannot be replayed; the page is told by `real_on`
        self._view = View(0, self.frames[-1], None, None, None, 0.0, (time.perf_counter() - t0) * 1e3, ctx.source,
                          self._real)
        return self._view

    # ---------------------------------------------------------------------------------------------- steps
    def step(self, action: int) -> View:
        """One imagined step under `action` (and the real env's, when shown)."""
        if self.state is None:
            raise ValueError("no context yet: reset (random dataset context) or upload context images first")
        n = self.model.action_spec.n
        if isinstance(action, bool) or not isinstance(action, int) or not 0 <= action < n:
            raise ValueError(f"unknown action {action!r}: expected an integer id in 0..{n - 1}")
        t0 = time.perf_counter()
        acts = torch.tensor([action], dtype=torch.long, device=self.model.device)
        with torch.no_grad(), inference_autocast(self.model.device, self.precision):
            self.state, out = self.model.step(self.state, acts, generator=self.generator)
            frame = _hwc(self.model.decode(self.state)[0])
        ms = (time.perf_counter() - t0) * 1e3
        reward = float(out.reward[0])
        self.actions.append(action)
        self.frames.append(frame)
        self.total_reward += reward
        if self._mirror is not None:
            self._real_step(action)
        self._view = View(len(self.actions), frame, reward, bool(out.terminated[0]), float(out.termination_prob[0]),
                          self.total_reward, ms, self.context.source, self._real)
        return self._view

    # -------------------------------------------------------------------------------------------- options
    def set_sampler_steps(self, steps: int | None) -> None:
        """None: the model as saved; n: reloaded with n sampler steps. The current state carries over."""
        self.model = self.models.get(steps)
        self.sampler_steps = steps

    def set_real(self, on: bool) -> View | None:
        """Show the real env beside the imagined one (replaying the actions so far), or stop showing it."""
        if not on:
            self.real_on = False
            self._close_mirror()
        elif not self.real_on:
            if self.context is None:
                raise ValueError("no context yet: reset first")
            self._open_mirror()
            self.real_on = True
        if self._view is None:
            return None
        self._view = dataclasses.replace(self._view, real=self._real)
        return self._view

    def _open_mirror(self) -> None:
        mirror = self.contexts.mirror(self.context)
        self._mirror, self._real_frames = mirror, deque(maxlen=self.max_frames)
        self._real_frames.extend(_hwc(f) for f in self.context.frames)
        self._real = RealView(self._real_frames[-1], None, False, 0.0)
        for a in self.actions:  # catch up with the steps taken before the real env was switched on
            self._real_step(a)

    def _real_step(self, action: int) -> None:
        frame, reward, _ = self._mirror.step(action)
        self._real_frames.append(frame)
        self._real = RealView(frame, reward, self._mirror.terminated, self._real.total_reward + reward)

    def _close_mirror(self) -> None:
        if self._mirror is not None:
            self._mirror.close()
        self._mirror, self._real = None, None

    # ------------------------------------------------------------------------------------------- download
    def rollout_video(self, fmt: str) -> bytes:
        """The rollout since the last reset (context frames, then imagined; the real env on the left when it
        is shown) as mp4 or gif bytes, upscaled (nearest) to at least MIN_VIDEO_SIDE pixels."""
        from vidworld.eval.rollout import write_rollout

        if fmt not in ("mp4", "gif"):
            raise ValueError(f"rollout format must be 'mp4' or 'gif', got {fmt!r}")
        if self.context is None:
            raise ValueError("nothing to download yet: reset first")
        frames = torch.from_numpy(np.stack(self.frames)).permute(0, 3, 1, 2)
        real = None
        if self._mirror is not None and len(self._real_frames) == len(self.frames):
            real = torch.from_numpy(np.stack(self._real_frames)).permute(0, 3, 1, 2)
        fps = float(self.model.meta.get("fps") or 15)
        upscale = max(1, -(-MIN_VIDEO_SIDE // self.model.frame_size))
        with tempfile.TemporaryDirectory(prefix="vidworld-play-") as tmp:
            path = Path(tmp) / f"rollout.{fmt}"
            write_rollout(path, frames, fps, upscale, real)
            return path.read_bytes()

    def close(self) -> None:
        self._close_mirror()
