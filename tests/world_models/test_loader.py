"""`load_world_model`: dispatch on the saved kind, old folders, and every way a folder can be damaged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.models.tiny import tiny_world_model
from vidworld.protocol import ActionSpec
from vidworld.world_models import load_world_model, model_kind
from vidworld.world_models.copy_last import CopyLastFrameModel
from vidworld.world_models.diffusion.model import DiffusionWorldModel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_folder_saved_by_the_previous_format_loads_and_gives_the_same_outputs():
    """tests/fixtures/legacy_diffusion_v1 was written by the code before the world-model family refactor
    (kind "vidworld.DiffusionWorldModel", format 1), with its outputs on a fixed input."""
    model = load_world_model(FIXTURES / "legacy_diffusion_v1")
    assert isinstance(model, DiffusionWorldModel) and model_kind(FIXTURES / "legacy_diffusion_v1") == "diffusion"
    want = load_file(FIXTURES / "legacy_diffusion_v1_expected.safetensors")
    state = model.init(want["frames"], want["actions"])
    state, out = model.step(state, torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    # (recorded with 2 threads; float sums differ in the last bits with another thread count)
    for key, got in (("latent", out.latent), ("reward", out.reward), ("prob", out.termination_prob)):
        torch.testing.assert_close(got, want[key], rtol=0, atol=1e-5)
    assert (model.decode(state).int() - want["decoded"].int()).abs().max() <= 1


def test_dispatch_on_kind_and_load_time_overrides(tmp_path):
    tiny_world_model().save_pretrained(tmp_path / "d")
    CopyLastFrameModel(ActionSpec(n=3), 2, 16).save_pretrained(tmp_path / "c")
    assert json.loads((tmp_path / "d" / "world_model.json").read_text())["kind"] == "diffusion"
    assert isinstance(load_world_model(tmp_path / "c"), CopyLastFrameModel)
    assert load_world_model(tmp_path / "d", sampler_steps=3).sampler_config.num_steps == 3
    with pytest.warns(UserWarning, match="1-step sampler"):
        load_world_model(tmp_path / "d", sampler_steps=1)
    with pytest.raises(ValueError, match=r"takes load-time overrides .*sampler_steps.*got \['num_steps'\]"):
        load_world_model(tmp_path / "d", num_steps=3)
    with pytest.raises(ValueError, match="load-time overrides"):
        load_world_model(tmp_path / "c", sampler_steps=3)  # copy-last has no sampler
    with pytest.raises(ValueError, match="sampler_steps must be >= 1"):
        load_world_model(tmp_path / "d", sampler_steps=0)


@pytest.fixture
def saved(tmp_path) -> Path:
    tiny_world_model().save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def _edit_info(folder: Path, **changes) -> None:
    info = json.loads((folder / "world_model.json").read_text())
    for k, v in changes.items():
        if v is None:
            info.pop(k, None)
        else:
            info[k] = v
    (folder / "world_model.json").write_text(json.dumps(info))


@pytest.mark.parametrize("damage, message", [
    (lambda f: _edit_info(f, format_version=99), r"format_version 99 is newer than this vidworld reads"),
    (lambda f: _edit_info(f, kind="rssm9"), r"unknown world-model kind 'rssm9'"),
    (lambda f: _edit_info(f, kind=None), r"no 'kind' field"),
    (lambda f: _edit_info(f, action_spec=None), r"world_model.json: missing or malformed 'action_spec'"),
    (lambda f: (f / "world_model.json").write_text("{not json"), r"world_model.json: not valid JSON"),
    (lambda f: (f / "world_model.json").unlink(), r"missing world_model.json"),
    (lambda f: shutil.rmtree(f / "heads"), r"missing part\(s\) \['heads'\]"),
])
def test_damaged_world_model_json_is_one_clear_error(saved, damage, message):
    damage(saved)
    with pytest.raises(ValueError, match=message) as e:
        load_world_model(saved)
    assert "\n" not in str(e.value)


def _weights(folder: Path) -> Path:
    return next(folder.glob("*.safetensors"))


@pytest.mark.parametrize("damage", ["deleted", "truncated", "garbage"])
def test_damaged_weights_name_the_part(saved, damage):
    w = _weights(saved / "denoiser")
    if damage == "deleted":
        w.unlink()
    elif damage == "truncated":
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    else:
        w.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ValueError, match=r"denoiser: cannot load its ActionDenoiser weights") as e:
        load_world_model(saved)
    assert "\n" not in str(e.value)


def test_weights_of_another_shape_name_the_part(saved, tmp_path):
    other = DiffusionWorldModel.__new__(DiffusionWorldModel)  # a VAE saved with other sizes
    from vidworld.world_models.diffusion.vae import FrameVAE

    FrameVAE(frame_size=16, block_out_channels=(4, 8, 16), latent_channels=4).save_pretrained(tmp_path / "vae")
    del other
    shutil.copy(_weights(tmp_path / "vae"), _weights(saved / "vae"))
    with pytest.raises(ValueError, match=r"vae: cannot load its FrameVAE weights"):
        load_world_model(saved)


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="world model folder not found"):
        load_world_model(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is a file, expected a world model folder"):
        load_world_model(tmp_path / "f")
