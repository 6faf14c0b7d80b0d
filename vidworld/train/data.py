"""What every world-model trainer receives: the dataset's train/val episodes decoded into memory, the action
space and provenance; and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vidworld.data.dataset import SegmentDataset
from vidworld.protocol import ActionSpec
from vidworld.train.episodes import Episodes


@dataclass(frozen=True)
class TrainData:
    """train / val: frames uint8 [N, 3, H, W] as `Episodes`; meta: provenance saved with the model (env_id,
    dataset, fps, val_fraction, split_seed); skipped: names of unreadable episodes left out."""

    train: Episodes
    val: Episodes
    action_spec: ActionSpec
    meta: dict[str, Any]
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainedModel:
    """A trainer's result: the model (protocol + save_pretrained) and its kind-specific summary numbers."""

    model: Any
    summary: dict[str, Any]


def load_split(path: str, context_length: int, split: str, val_fraction: float, split_seed: int
               ) -> tuple[Episodes, SegmentDataset]:
    """Decode every episode of a split once into an in-memory `Episodes` (frames uint8 [N, 3, H, W])."""
    ds = SegmentDataset(path, context_length, 1, split, val_fraction, split_seed)  # skips unreadable episodes
    obs, acts, rews, terms = [], [], [], []
    for ep in ds.iter_episodes():
        obs.append(torch.from_numpy(np.ascontiguousarray(ep.frames)).permute(0, 3, 1, 2))
        acts.append(torch.from_numpy(np.asarray(ep.arrays.actions)))
        rews.append(torch.from_numpy(np.asarray(ep.arrays.rewards, dtype=np.float32)))
        terms.append(torch.from_numpy(np.asarray(ep.arrays.terminated, dtype=bool)))
    if not obs:
        why = ""
        if ds.skipped_reasons:  # every episode of the split was unreadable: say which and why (the first)
            name, reason = next(iter(ds.skipped_reasons.items()))
            why = f" ({len(ds.skipped_reasons)} skipped as unreadable; first: {name}: {reason})"
        raise ValueError(f"dataset {path}: the {split!r} split has no readable episodes{why}")
    return Episodes.from_lists(obs, acts, rews, terms), ds


def action_spec_of(ds: SegmentDataset) -> ActionSpec:
    space = ds.store.action_space
    n = getattr(space, "n", None)  # gymnasium: only Discrete spaces have n
    if n is None:
        raise ValueError(f"dataset {ds.store.root}: only discrete action spaces are trained so far, got {space}")
    return ActionSpec(kind="discrete", n=int(n))


def load_train_data(cfg) -> TrainData:
    """cfg: ExperimentConfig (sections `data` and `model`)."""
    d, K = cfg.data, cfg.model.context_length
    train, ds = load_split(d.path, K, "train", d.val_fraction, d.split_seed)
    if int(train.lengths.max()) + 1 < K:
        raise ValueError(f"config key 'model.context_length': {K} frames, but the longest training episode in "
                         f"{d.path} has {int(train.lengths.max()) + 1}; use a shorter context or longer episodes")
    val, val_ds = load_split(d.path, K, "val", d.val_fraction, d.split_seed)
    manifest = ds.store.manifest
    meta = {"env_id": manifest.get("env_id"), "dataset": str(d.path), "fps": manifest.get("fps"),
            "val_fraction": d.val_fraction, "split_seed": d.split_seed}
    skipped = tuple(ds.skipped_episodes) + tuple(val_ds.skipped_episodes)
    return TrainData(train=train, val=val, action_spec=action_spec_of(ds), meta=meta, skipped=skipped)
