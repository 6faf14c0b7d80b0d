"""The world-model family and its one loader.

    from vidworld.world_models import load_world_model
    model = load_world_model("runs/demo/model")                     # any kind, by world_model.json's "kind"
    model = load_world_model("runs/demo/model", sampler_steps=1)    # a kind's own load-time overrides

Kinds (see `registry.KINDS`): "diffusion" (latent video diffusion: VAE + EDM denoiser + heads), "rssm"
(DreamerV3's recurrent state-space model), "copy_last" (the copy-the-last-frame baseline). Every model
implements `vidworld.protocol.WorldModel`.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import torch

from vidworld.world_models.folder import read_info
from vidworld.world_models.registry import KINDS, Kind, canonical_kind, model_class, register_kind

__all__ = ["KINDS", "Kind", "load_world_model", "model_kind", "register_kind"]


def model_kind(path: str | os.PathLike) -> str:
    """The registered kind of a saved world-model folder."""
    return canonical_kind(read_info(path).get("kind"), f"{path}/world_model.json")


def load_world_model(path: str | os.PathLike, device: str | torch.device = "cpu", **overrides: Any) -> Any:
    """Load any saved world model; `overrides` are the kind's load-time options (e.g. diffusion's
    `sampler_steps`). Unknown overrides are errors naming the ones the kind accepts."""
    cls = model_class(model_kind(path))
    accepted = [n for n in inspect.signature(cls.from_pretrained).parameters if n not in ("path", "device")]
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(f"{path}: a {cls.__name__} takes load-time overrides {accepted}, got {unknown}")
    return cls.from_pretrained(path, device=device, **overrides)
