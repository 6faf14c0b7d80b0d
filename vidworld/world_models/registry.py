"""The world-model kinds: which class loads a folder of each `kind`, and which function trains it.

Kinds are registered by dotted name ("module:attribute") and imported only when used, so generic layers
(envs, planners, evaluation, the training command) never import a concrete model.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Kind:
    """model: "module:Class" with `from_pretrained(path, device=..., **overrides)`; trainer: "module:function"
    `train(cfg: ExperimentConfig, resume: bool, progress: bool) -> TrainOutput`, or None (nothing to train);
    online: "module:Class" built as `Class(cfg, root, action_spec, meta)` with
    `update(episodes, target_steps, progress) -> model` (the `vidworld dream` loop), or None."""

    model: str
    trainer: str | None = None
    online: str | None = None


KINDS: dict[str, Kind] = {
    "diffusion": Kind("vidworld.world_models.diffusion.model:DiffusionWorldModel",
                      "vidworld.world_models.diffusion.train:train_diffusion",
                      "vidworld.world_models.diffusion.online:DiffusionOnline"),
    "copy_last": Kind("vidworld.world_models.copy_last:CopyLastFrameModel"),
    "muzero": Kind("vidworld.world_models.muzero.model:MuZeroWorldModel"),  # trained by dream.agent: muzero
    "rssm": Kind("vidworld.world_models.rssm.model:RSSMWorldModel",
                 "vidworld.world_models.rssm.train:train_rssm",
                 "vidworld.world_models.rssm.online:RSSMOnline"),
}
# Names older vidworld versions wrote into world_model.json.
LEGACY_KINDS = {"vidworld.DiffusionWorldModel": "diffusion"}


@dataclass
class ModelConfig:
    """YAML section `model`: which kind to train, and what every kind shares. Each kind's own settings are
    in its section (`diffusion:`, later `rssm:`, `muzero:`)."""

    kind: str = "diffusion"
    context_length: int = 8  # K: frames of history a state is built from (sub-pixel motion needs several)

    def __post_init__(self) -> None:
        if self.kind not in KINDS and self.kind not in LEGACY_KINDS:
            raise ValueError(f"model.kind {self.kind!r} is not a world-model kind; known: {sorted(KINDS)}")
        if self.context_length < 1:
            raise ValueError(f"model.context_length must be >= 1, got {self.context_length}")


def register_kind(name: str, kind: Kind) -> None:
    """Add a world-model kind (e.g. from a plugin or a test)."""
    KINDS[name] = kind


def canonical_kind(kind: Any, where: Path | str = "world_model.json") -> str:
    """A saved `kind` -> its registered name; ValueError naming `where` for a missing or unknown kind."""
    if kind is None:
        raise ValueError(f"{where}: no 'kind' field; expected one of {sorted(KINDS)}")
    kind = LEGACY_KINDS.get(kind, kind)
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown world-model kind {kind!r}; known kinds: {sorted(KINDS)}")
    return kind


def resolve(dotted: str) -> Any:
    module, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module), attr)


def model_class(kind: str) -> type:
    return resolve(KINDS[canonical_kind(kind)].model)


def online_learner(kind: str):
    spec = KINDS[canonical_kind(kind, "model.kind")]
    if spec.online is None:
        raise ValueError(f"model.kind {kind!r} cannot be trained online (vidworld dream) yet; kinds that can: "
                         f"{sorted(k for k, v in KINDS.items() if v.online)}")
    return resolve(spec.online)


def trainer(kind: str):
    spec = KINDS[canonical_kind(kind, "model.kind")]
    if spec.trainer is None:
        raise ValueError(f"model.kind {kind!r} has nothing to train; trainable kinds: "
                         f"{sorted(k for k, v in KINDS.items() if v.trainer)}")
    return resolve(spec.trainer)
