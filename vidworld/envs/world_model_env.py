"""WorldModelEnv: a world model served as a gymnasium environment (the thin shell over the protocol).

    env = gymnasium.make("vidworld/WorldModel-v0", model="runs/demo/model")   # after `import vidworld.envs`
    obs, info = env.reset(seed=0)            # a random K-frame window of the model's dataset as context
    obs, reward, terminated, truncated, info = env.step(1)

The env only holds the protocol state (`model.init` / `model.step`) and converts to numpy; all dynamics live in
the model. Observations are uint8 frames [H, W, 3] (`obs_type="pixels"`, PixelDecoder models), float32
latents [c, h, w] (`obs_type="latent"`, LatentObserver models) or the float32 feature vector [F] of any model
(`obs_type="features"`). The reset observation is the newest *real* context frame (for "pixels");
every later one is imagined (decoded by the model's VAE).

Determinism: the diffusion sampler's noise comes from a torch.Generator seeded from `self.np_random` at each
reset, so the same reset seed and the same actions give the same video (gymnasium's env checker demands it).

Contexts for a reset come from, in order: `options={"context": (frames, actions)}`; else a random window of
the dataset given as `dataset=` or recorded in `model.meta["dataset"]` (chosen with `self.np_random`). Windows
are K+1 frames long and only the first K are used, so a context never ends on an episode's final (possibly
terminal) frame.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from vidworld.data.dataset import SegmentDataset
from vidworld.protocol import LatentObserver, PixelDecoder, WorldModel
from vidworld.world_models import load_world_model
from vidworld.world_models.compat import check_dataset

ObsType = Literal["pixels", "latent", "features"]


# ------------------------------------------------------------------------------------------------ the model
def resolve_model(model: Any, device: str | torch.device = "cpu") -> WorldModel:
    """A world-model folder (str / PathLike, any kind: `load_world_model`) or a model object implementing the
    protocol (returned as is, on its own device). Raises FileNotFoundError / ValueError for a bad folder."""
    if isinstance(model, (str, os.PathLike)):
        model = load_world_model(model, device=device)
    elif not isinstance(model, WorldModel):
        needed = ("init", "step", "features", "action_spec", "context_length", "frame_size", "feature_dim", "meta")
        missing = [name for name in needed if not hasattr(model, name)]
        raise TypeError(f"model must be a world-model folder or an object implementing the vidworld world-model "
                        f"protocol; {type(model).__name__} lacks {missing}")
    if model.action_spec.kind != "discrete":
        raise ValueError(f"world-model envs support discrete actions only; the model's are {model.action_spec}")
    return model


def observation_space(model: WorldModel, obs_type: ObsType) -> gym.spaces.Box:
    """Box uint8 [S, S, 3] (pixels), float32 `model.latent_shape` (latent) or float32 [F] (features)."""
    if obs_type == "pixels":
        if not isinstance(model, PixelDecoder):
            raise ValueError(f"obs_type='pixels' needs a model that decodes frames; {type(model).__name__} "
                             "is not a PixelDecoder; use obs_type='features'")
        s = model.frame_size
        return gym.spaces.Box(0, 255, (s, s, 3), np.uint8)
    if obs_type == "latent":
        if not isinstance(model, LatentObserver):
            raise ValueError(f"obs_type='latent' needs a LatentObserver model; {type(model).__name__} is not one; "
                             "use obs_type='features'")
        # Normalised VAE latents are unbounded in principle.
        return gym.spaces.Box(-np.inf, np.inf, tuple(model.latent_shape), np.float32)
    if obs_type == "features":
        return gym.spaces.Box(-np.inf, np.inf, (int(model.feature_dim),), np.float32)
    raise ValueError(f"obs_type must be 'pixels', 'latent' or 'features', got {obs_type!r}")


def observation_of(model: WorldModel, state: Any, obs_type: ObsType) -> Tensor:
    """Non-pixel observations of a batched state: latent [B, *latent_shape] or features [B, F], float32."""
    if obs_type == "latent":
        return model.latent(state).float()
    return model.features(state).float()


# --------------------------------------------------------------------------------------------- contexts
def context_tensors(frames: Any, actions: Any, model: Any, lead: tuple[int, ...] = ()) -> tuple[Tensor, Tensor]:
    """Validate a user-given context and convert it to what `model.init` takes.

    frames: uint8 [*lead, K, S, S, 3] (numpy HWC, like real env observations) or [*lead, K, 3, S, S];
    actions: integer [*lead, K-1] in [0, n). `lead` is () for one env, (N,) for N envs.
    Returns (frames uint8 [B, K, 3, S, S], actions long [B, K-1]) with B = prod(lead) or 1.
    """
    K, S, n = model.context_length, model.frame_size, model.action_spec.n
    f = frames.detach().cpu() if isinstance(frames, Tensor) else torch.from_numpy(np.array(frames))
    want = f"uint8 [{', '.join(map(str, lead + (K,)))}, {S}, {S}, 3] (or [..., 3, {S}, {S}])"
    if f.dtype != torch.uint8 or f.dim() != len(lead) + 4 or tuple(f.shape[: len(lead)]) != lead:
        raise ValueError(f"context frames must be {want}, got {f.dtype} {tuple(f.shape)}")
    if tuple(f.shape[-3:]) == (S, S, 3):
        f = f.movedim(-1, -3)
    elif tuple(f.shape[-3:]) != (3, S, S):
        raise ValueError(f"context frames must be {S}x{S} RGB (the model's frame_size is {S}): expected {want}, "
                         f"got {tuple(f.shape)}")
    if f.shape[-4] != K:
        raise ValueError(f"the model's context_length is {K}: context frames must be {want}, got "
                         f"{f.shape[-4]} frames {tuple(f.shape)}")
    a = actions.detach().cpu() if isinstance(actions, Tensor) else torch.from_numpy(np.array(actions))
    if a.dtype.is_floating_point or a.dtype.is_complex or a.dtype == torch.bool:
        raise ValueError(f"context actions must be integer ids in [0, {n}), got dtype {a.dtype}")
    if tuple(a.shape) != lead + (K - 1,):
        raise ValueError(f"context actions must have shape {list(lead + (K - 1,))} (K-1 actions for K frames), "
                         f"got {list(a.shape)}")
    if a.numel() and (int(a.min()) < 0 or int(a.max()) >= n):
        raise ValueError(f"context action out of range: got values {a.min()}..{a.max()}, expected ids in [0, {n})")
    return f.reshape(-1, K, 3, S, S).contiguous(), a.reshape(-1, K - 1).long()


class ContextSource:
    """Random context windows for resets, from a dataset folder opened lazily.

    `dataset=None` falls back to `model.meta["dataset"]`; that one is opened only when a reset needs it, so
    a model whose training data is not on this machine still works with explicit contexts. An explicitly
    given dataset is opened (and checked) at once. The split uses the model's recorded val_fraction /
    split_seed, so split="val" means the model's own held-out episodes.
    """

    def __init__(self, model: Any, dataset: str | os.PathLike | None = None, split: str = "all"):
        self.model, self.split = model, split
        meta = model.meta
        self.from_meta = dataset is None and meta.get("dataset") is not None
        self.path: Path | None = Path(dataset) if dataset is not None else (
            Path(meta["dataset"]) if self.from_meta else None)
        self._windows: SegmentDataset | None = None
        if dataset is not None:
            self._open()

    def _open(self) -> SegmentDataset:
        if self._windows is not None:
            return self._windows
        if self.path is None:
            raise ValueError("no context for reset: the model records no dataset (meta['dataset']); pass "
                             "dataset=<episode folder> to the env, or reset(options={'context': (frames, actions)})")
        K, S = self.model.context_length, self.model.frame_size
        meta = self.model.meta
        try:
            windows = SegmentDataset(self.path, K, horizon=1, split=self.split,
                                     val_fraction=meta.get("val_fraction", 0.1), split_seed=meta.get("split_seed", 0))
        except FileNotFoundError as e:
            where = (" (the dataset recorded in the model's meta; to use another, pass dataset= to gym.make, "
                     "--data to `vidworld play`)") if self.from_meta else ""
            raise FileNotFoundError(f"{e}{where}") from None
        check_dataset(self.model, windows.store)
        if len(windows) == 0:
            raise ValueError(f"dataset {self.path} ({self.split} split) has no window of K+1={K + 1} consecutive "
                             "frames to start an episode from")
        self._windows = windows
        return windows

    def sample(self, rng: np.random.Generator, n: int) -> tuple[Tensor, Tensor, np.ndarray]:
        """n random windows -> (frames uint8 [n, K, 3, S, S], actions long [n, K-1], where int64 [n, 2] =
        (episode index in the store, start frame))."""
        windows = self._open()
        K = self.model.context_length
        idx = rng.integers(len(windows), size=n)
        items = [windows[int(i)] for i in idx]
        frames = torch.stack([it["frames"][:K] for it in items])
        actions = torch.stack([it["actions"][: K - 1] for it in items]).long()
        where = np.array([[it["episode"], it["start"]] for it in items], dtype=np.int64).reshape(n, 2)
        return frames, actions, where


def unpack_context(options: dict | None) -> tuple[Any, Any] | None:
    """options["context"] = (frames, actions) -> that pair, None if absent; unknown option keys are errors."""
    options = options or {}
    unknown = set(options) - {"context"}
    if unknown:
        raise ValueError(f"unknown reset option(s) {sorted(unknown)}; the only option is 'context': (frames, actions)")
    if "context" not in options:
        return None
    ctx = options["context"]
    if not isinstance(ctx, (tuple, list)) or len(ctx) != 2:
        raise ValueError("reset option 'context' must be a pair (frames, actions): frames uint8 [K, S, S, 3], "
                         f"actions [K-1]; got {type(ctx).__name__}")
    return ctx[0], ctx[1]


def to_numpy(x: Tensor) -> np.ndarray:
    """A fresh numpy array (never a view of a tensor we keep: gymnasium wants distinct arrays per call)."""
    return x.detach().cpu().numpy().copy()


# -------------------------------------------------------------------------------------------------- the env
class WorldModelEnv(gym.Env):
    """One imagined environment over a world model (see the module docstring).

    model: a world-model folder or an object implementing the protocol (init/step/decode, context_length,
        frame_size, action_spec; see `vidworld.protocol`).
    dataset: episode folder for random reset contexts (default: model.meta["dataset"]); split: which of its
        episodes ("all", "train", "val": the model's own split).
    max_episode_steps: truncation horizon (None: never truncate). `gymnasium.make` sets it to None here and
        truncates with its TimeLimit wrapper instead (default 200; `gymnasium.make(..., max_episode_steps=N)`).
    render_mode: "rgb_array" or None; render() returns the current frame uint8 [S, S, 3] in both cases.
    device: where to load a model given as a folder.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}  # noqa: RUF012 (gymnasium's API)

    def __init__(self, model: Any, dataset: str | os.PathLike | None = None, obs_type: ObsType = "pixels",
                 max_episode_steps: int | None = 200, render_mode: str | None = None,
                 device: str | torch.device = "cpu", split: Literal["all", "train", "val"] = "all"):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        self.model = resolve_model(model, device)
        self.obs_type: ObsType = obs_type
        self.observation_space = observation_space(self.model, obs_type)
        self.action_space = gym.spaces.Discrete(self.model.action_spec.n)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.model.meta.get("fps") or 15}
        self.contexts = ContextSource(self.model, dataset, split)
        self._device = self.model.device
        self._state: Any = None
        self._frame: Tensor | None = None  # uint8 [3, S, S], or None until render() decodes it (latent obs)
        self._generator: torch.Generator | None = None
        self.elapsed_steps = 0

    @property
    def state(self) -> Any:
        """The current world-model state (batch 1): planners may branch from it with the protocol helpers."""
        return self._state

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """options: {"context": (frames uint8 [K, S, S, 3] or [K, 3, S, S], actions int [K-1])} or None."""
        super().reset(seed=seed)
        ctx = unpack_context(options)
        if ctx is not None:
            frames, actions = context_tensors(*ctx, self.model)
            info: dict = {}
        else:
            frames, actions, where = self.contexts.sample(self.np_random, 1)
            info = {"context_episode": int(where[0, 0]), "context_start": int(where[0, 1])}
        # Drawn after the context, from the same seeded stream: same seed -> same context and same noise.
        self._generator = torch.Generator(device=self._device).manual_seed(int(self.np_random.integers(2**63)))
        self._state = self.model.init(frames.to(self._device), actions.to(self._device))
        self._frame = frames[0, -1]
        self.elapsed_steps = 0
        return self._observation(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._state is None:
            raise RuntimeError("WorldModelEnv.step() called before reset(): call reset() first")
        a = self._check_action(action)
        acts = torch.tensor([a], dtype=torch.long, device=self._device)
        self._state, out = self.model.step(self._state, acts, generator=self._generator)
        self.elapsed_steps += 1
        self._frame = self.model.decode(self._state)[0] if self.obs_type == "pixels" else None
        terminated = bool(out.terminated[0])
        truncated = self.max_episode_steps is not None and self.elapsed_steps >= self.max_episode_steps
        info = {"termination_prob": float(out.termination_prob[0])}
        return self._observation(), float(out.reward[0]), terminated, bool(truncated), info

    def render(self) -> np.ndarray:
        """The current frame uint8 [S, S, 3] (decoded from the state when observations are latents)."""
        if self._state is None:
            raise RuntimeError("WorldModelEnv.render() called before reset(): call reset() first")
        if self._frame is None:
            if not isinstance(self.model, PixelDecoder):
                raise ValueError(f"render() needs a model that decodes frames; {type(self.model).__name__} does not")
            self._frame = self.model.decode(self._state)[0]
        return to_numpy(self._frame.permute(1, 2, 0))

    def _observation(self) -> np.ndarray:
        if self.obs_type == "pixels":
            return to_numpy(self._frame.permute(1, 2, 0))
        return to_numpy(observation_of(self.model, self._state, self.obs_type)[0])

    def _check_action(self, action: Any) -> int:
        a = np.asarray(action)
        if a.shape != () or not np.issubdtype(a.dtype, np.integer) or not 0 <= int(a) < self.action_space.n:
            raise ValueError(f"invalid action {action!r}: expected an integer id in the action space "
                             f"{self.action_space} (0..{self.action_space.n - 1})")
        return int(a)
