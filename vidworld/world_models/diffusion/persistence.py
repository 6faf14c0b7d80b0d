"""A DiffusionWorldModel's folder: write it atomically, read it back into constructor arguments.

    save_folder(model, "runs/demo/model")
    kwargs = load_folder("runs/demo/model", sampler_steps=3)   # -> DiffusionWorldModel(**kwargs)

Layout: `vae/`, `denoiser/`, `heads/` (required), `value/`, `history/`, `static_gate/` (optional), each a
diffusers `save_pretrained` folder (config.json + safetensors), and `world_model.json` (kind, format version,
sampler, action space, provenance, decode mode). `DiffusionWorldModel.save_pretrained`/`from_pretrained` are
the public entry points; this module owns the format so that the model file owns only the computation.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidworld.atomic import atomic_folder
from vidworld.protocol import ActionSpec
from vidworld.world_models.diffusion.denoiser import ActionDenoiser
from vidworld.world_models.diffusion.heads import RewardTerminationHead
from vidworld.world_models.diffusion.history import HistoryEncoder
from vidworld.world_models.diffusion.sampler import SamplerConfig
from vidworld.world_models.diffusion.static_gate import StaticGate
from vidworld.world_models.diffusion.vae import FrameVAE
from vidworld.world_models.diffusion.value import ValueHead
from vidworld.world_models.folder import load_part, read_model_info

if TYPE_CHECKING:
    from vidworld.world_models.diffusion.model import DiffusionWorldModel

KIND = "diffusion"
FORMAT_VERSION = 2  # 1: kind "vidworld.DiffusionWorldModel" (same parts; loads unchanged)
PARTS = ("vae", "denoiser", "heads")
# optional part: folder name -> (model attribute / constructor argument, class)
OPTIONAL = {"value": ("value_head", "value", ValueHead), "history": ("history", "history", HistoryEncoder),
            "static_gate": ("static_gate", "static_gate", StaticGate)}
CLASSES = {"vae": FrameVAE, "denoiser": ActionDenoiser, "heads": RewardTerminationHead}


def save_folder(model: DiffusionWorldModel, path: str | os.PathLike) -> None:
    """Write every part and `world_model.json` to folder `path` (a temp folder, then a rename)."""
    with atomic_folder(path) as tmp:
        for name in PARTS:
            getattr(model, name).save_pretrained(tmp / name, safe_serialization=True)
        for folder, (attr, _, _) in OPTIONAL.items():
            part = getattr(model, attr)
            if part is not None:
                part.save_pretrained(tmp / folder, safe_serialization=True)
        info = {
            "format_version": FORMAT_VERSION,
            "kind": KIND,
            "sampler": dataclasses.asdict(model.sampler_config),
            "action_spec": dataclasses.asdict(model.action_spec),
            "meta": model.meta,
            "decode_relative": model.decode_relative,
        }
        (tmp / "world_model.json").write_text(json.dumps(info, indent=2))


def _sampler(saved: SamplerConfig, sampler: SamplerConfig | None, sampler_steps: int | None) -> SamplerConfig:
    sampler = sampler or saved
    if sampler_steps is None:
        return sampler
    if int(sampler_steps) < 1:
        raise ValueError(f"sampler_steps must be >= 1, got {sampler_steps}")
    sampler = dataclasses.replace(sampler, num_steps=int(sampler_steps))
    if sampler.num_steps == 1:
        warnings.warn("a 1-step sampler returns the denoiser's posterior mean: samples of the same "
                      "future barely differ, so uncertainty-aware planning has nothing to measure; "
                      "use >= 2 steps", stacklevel=4)
    return sampler


def load_folder(path: str | os.PathLike, sampler: SamplerConfig | None = None,
                sampler_steps: int | None = None) -> dict[str, Any]:
    """Read a folder written by `save_folder` into `DiffusionWorldModel(**kwargs)` arguments; one-line
    ValueErrors for a missing part, a malformed `world_model.json` or an action space the networks don't take.
    `sampler` replaces the saved sampler settings; `sampler_steps` (>= 1) changes only the step count."""
    path = Path(path)
    info = read_model_info(path, KIND, FORMAT_VERSION)
    missing = [p for p in PARTS if not (path / p).is_dir()]
    if missing:
        raise ValueError(f"world model folder {path} is missing part(s) {missing}; expected {list(PARTS)}")
    parts: dict[str, Any] = {name: load_part(CLASSES[name], path / name) for name in PARTS}
    for folder, (_, arg, cls) in OPTIONAL.items():
        if (path / folder).is_dir():
            parts[arg] = load_part(cls, path / folder)
    try:
        spec = ActionSpec(**{**info["action_spec"], "shape": tuple(info["action_spec"].get("shape", ()))})
        saved_sampler = SamplerConfig(**info["sampler"])
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path / 'world_model.json'}: missing or malformed 'action_spec'/'sampler' "
                         f"({type(e).__name__}: {e}); expected the fields save_pretrained writes") from None
    if spec.kind == "discrete" and spec.n != parts["denoiser"].config.num_actions:
        raise ValueError(f"{path / 'world_model.json'}: action_spec.n {spec.n} but the networks take "
                         f"{parts['denoiser'].config.num_actions} actions")
    return {**parts, "sampler": _sampler(saved_sampler, sampler, sampler_steps), "action_spec": spec,
            "meta": info.get("meta", {}), "decode_relative": info.get("decode_relative", True)}
