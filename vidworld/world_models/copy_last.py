"""The trivial member of the world-model family (kind "copy_last"), the reference every model must beat.

`CopyLastFrameModel` predicts that nothing ever changes: the last context frame repeats forever, reward 0,
no termination. It is the "copy last frame" reference of video prediction papers (a model that has learned
nothing about dynamics scores exactly this). It is a full protocol model: it saves and loads as a folder,
so evaluation, the simulator and the planners treat it like any other kind.

    model = CopyLastFrameModel(ActionSpec(n=2), context_length=4, frame_size=64)
    model.save_pretrained("runs/copy_last")          # load_world_model("runs/copy_last") gives it back
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from vidworld.atomic import atomic_folder
from vidworld.protocol import ActionSpec, StepOut
from vidworld.world_models.folder import read_model_info

KIND = "copy_last"
FORMAT_VERSION = 1
FEATURE_SIDE = 8  # features: the kept frame average-pooled to 8x8 RGB in [0, 1]


@dataclass(frozen=True)
class CopyLastState:
    """frame: uint8 [B, 3, H, W], the frame the model keeps predicting."""

    frame: Tensor


class CopyLastFrameModel:
    """World model whose every imagined frame is the last context frame (see module docstring).

    Its latent is the frame itself as float in [0, 1], [B, 3, H, W]; `decode` accepts a state or such
    latents and returns uint8 [B, 3, H, W].
    """

    def __init__(self, action_spec: ActionSpec, context_length: int, frame_size: int | None = None,
                 meta: dict | None = None):
        """frame_size None accepts frames of any square size (tests); a saved model should name it."""
        if context_length < 1:
            raise ValueError(f"context_length must be >= 1, got {context_length}")
        self.action_spec = action_spec
        self.context_length = context_length
        self.frame_size = frame_size
        self.meta = dict(meta or {})
        self.feature_dim = 3 * FEATURE_SIDE * FEATURE_SIDE
        self.device = torch.device("cpu")

    def features(self, state: CopyLastState) -> Tensor:
        """[B, 192]: the kept frame average-pooled to 8x8, RGB in [0, 1]."""
        x = state.frame.float() / 255.0
        return F.adaptive_avg_pool2d(x, FEATURE_SIDE).flatten(1)

    def observe(self, state: CopyLastState, actions: Tensor, frames: Tensor) -> CopyLastState:
        """A real transition: keep copying the newly seen frame uint8 [B, 3, H, W]."""
        self.action_spec.check(actions, batch=state.frame.shape[0])
        if frames.dtype != torch.uint8 or frames.shape != state.frame.shape:
            raise ValueError(f"frames must be uint8 {tuple(state.frame.shape)}, got {frames.dtype} {tuple(frames.shape)}")
        return CopyLastState(frame=frames.clone())

    def decode_from(self, state: CopyLastState, latents: Tensor) -> Tensor:
        """StepOut.latent's [N, 3, H, W] (the frame in [0, 1]) -> uint8 [N, 3, H, W]."""
        return self.decode(latents)

    def save_pretrained(self, path: str | os.PathLike) -> None:
        with atomic_folder(path) as tmp:
            info = {"format_version": FORMAT_VERSION, "kind": KIND, "context_length": self.context_length,
                    "frame_size": self.frame_size, "action_spec": dataclasses.asdict(self.action_spec),
                    "meta": self.meta}
            (tmp / "world_model.json").write_text(json.dumps(info, indent=2))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> CopyLastFrameModel:
        info = read_model_info(Path(path), KIND, FORMAT_VERSION)
        info_file = Path(path) / "world_model.json"
        k, size = info.get("context_length"), info.get("frame_size")
        # int("3") would pass a string; a frame_size "big" would reach every consumer's comparisons
        if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1):
            raise ValueError(f"{info_file}: context_length is {k!r}; expected an integer >= 1")
        if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and size >= 1):
            raise ValueError(f"{info_file}: frame_size is {size!r}; expected an integer >= 1 (or null: any size)")
        try:
            spec = ActionSpec(**{**info["action_spec"], "shape": tuple(info["action_spec"].get("shape", ()))})
            return cls(spec, k, size, info.get("meta", {}))
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{info_file}: missing or malformed field ({e}); expected action_spec, "
                             "context_length, frame_size") from None

    def init(self, context_frames: Tensor, context_actions: Tensor) -> CopyLastState:
        """context_frames uint8 [B, K, 3, H, W], context_actions long [B, K-1] -> state."""
        k = self.context_length
        if context_frames.dtype != torch.uint8 or context_frames.dim() != 5 or context_frames.shape[2] != 3:
            raise ValueError(
                f"context_frames must be uint8 [B, K={k}, 3, H, W], got {context_frames.dtype} "
                f"{tuple(context_frames.shape)}"
            )
        b = context_frames.shape[0]
        if context_frames.shape[1] != k:
            raise ValueError(f"expected K={k} context frames, got {context_frames.shape[1]}")
        if tuple(context_actions.shape) != (b, k - 1):
            raise ValueError(
                f"context_actions must have shape [B={b}, K-1={k - 1}], got {tuple(context_actions.shape)}"
            )
        size = self.frame_size
        if size is not None and tuple(context_frames.shape[-2:]) != (size, size):
            raise ValueError(f"frames must be {size}x{size}, got {tuple(context_frames.shape[-2:])}")
        return CopyLastState(frame=context_frames[:, -1].clone())

    def step(
        self, state: CopyLastState, actions: Tensor, generator: torch.Generator | None = None
    ) -> tuple[CopyLastState, StepOut]:
        """actions long [B] (validated, then ignored) -> same state, StepOut with reward 0 and p(term) 0."""
        b = state.frame.shape[0]
        self.action_spec.check(actions, batch=b)
        zeros = torch.zeros(b, device=state.frame.device)
        out = StepOut(
            latent=state.frame.float() / 255.0,
            reward=zeros,
            terminated=torch.zeros(b, dtype=torch.bool, device=state.frame.device),
            termination_prob=zeros.clone(),
        )
        return state, out

    def decode(self, state_or_latents: CopyLastState | Tensor) -> Tensor:
        """State, or latents float [B, 3, H, W] in [0, 1] -> uint8 [B, 3, H, W]."""
        if isinstance(state_or_latents, CopyLastState):
            return state_or_latents.frame
        return (state_or_latents.clamp(0, 1) * 255.0).round().to(torch.uint8)
