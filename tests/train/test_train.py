import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from tests.train.conftest import tiny_overrides
from vidworld.experiment import load_experiment
from vidworld.train.run import train_world_model
from vidworld.world_models import load_world_model
from vidworld.world_models.diffusion.model import DiffusionWorldModel


def _outputs(model: DiffusionWorldModel):
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 3, 3, 16, 16), generator=g, dtype=torch.uint8)
    state = model.init(frames, torch.tensor([[0, 1], [1, 1]]))
    state, out = model.step(state, torch.tensor([1, 0]), generator=g)
    return [out.latent, out.reward, out.termination_prob, model.decode(state)]


def test_train_saves_a_loadable_model_and_resumes_exactly(tiny_dataset, tmp_path):
    cfg = load_experiment("configs/demo.yaml", tiny_overrides(tiny_dataset, tmp_path / "run"))
    first = train_world_model(cfg, progress=False)
    run = tmp_path / "run"
    assert (run / "config.yaml").is_file() and (run / "train_summary.json").is_file()
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["train_frames"] > 0 and summary["dynamics_train_samples_per_s"] > 0
    loaded = DiffusionWorldModel.from_pretrained(first.model_dir)
    assert loaded.meta["env_id"] == "CartPole-v1" and loaded.context_length == 3
    assert loaded.value_head is not None  # value.enabled is on by default
    for a, b in zip(_outputs(first.model), _outputs(loaded)):
        assert torch.equal(a, b)
    g = torch.Generator().manual_seed(1)
    state = loaded.init(torch.randint(0, 256, (2, 3, 3, 16, 16), generator=g, dtype=torch.uint8),
                        torch.tensor([[0, 1], [1, 1]]))
    assert torch.equal(first.model.value(state), loaded.value(state))
    rows = [json.loads(x) for x in (run / "stage_dynamics" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]

    # Simulate a run killed after step 2 of the VAE: drop the newest checkpoint and everything after it.
    ckpts = sorted((run / "stage_vae" / "checkpoints").iterdir())
    assert sorted(p.name for p in ckpts) == ["checkpoint_2", "checkpoint_4"]
    ckpts = sorted(ckpts, key=lambda p: int(p.name.split("_")[1]))
    shutil.rmtree(ckpts[-1])
    for name in ("vae", "model", "stage_dynamics"):
        shutil.rmtree(run / name)
    resumed = train_world_model(cfg, resume=True, progress=False)
    for a, b in zip(_outputs(first.model), _outputs(resumed.model)):
        assert torch.equal(a, b), "resumed training must reproduce the uninterrupted run exactly"
    assert sorted(p.name for p in (run / "stage_vae" / "checkpoints").iterdir()) == ["checkpoint_2", "checkpoint_4"]

    # Killed in the dynamics stage after step 2: resume from its checkpoint, VAE stage is skipped.
    shutil.rmtree(run / "stage_dynamics" / "checkpoints" / "checkpoint_4")
    shutil.rmtree(run / "model")
    again = train_world_model(cfg, resume=True, progress=False)
    for a, b in zip(_outputs(first.model), _outputs(again.model)):
        assert torch.equal(a, b)


def test_missing_dataset_is_a_clear_error(tiny_dataset, tmp_path):
    cfg = load_experiment("configs/demo.yaml", tiny_overrides(tiny_dataset, tmp_path / "run") + ["data.path=/nope"])
    with pytest.raises(FileNotFoundError, match="/nope"):
        train_world_model(cfg, progress=False)


def test_resume_with_a_different_architecture_is_refused(tiny_dataset, tmp_path):
    over = tiny_overrides(tiny_dataset, tmp_path / "run") + ["train.vae_steps=2", "train.dynamics_steps=2"]
    train_world_model(load_experiment("configs/demo.yaml", over), progress=False)
    changed = load_experiment("configs/demo.yaml", over + ["diffusion.denoiser.channels=[8,8]"])
    with pytest.raises(ValueError, match=r"denoiser\.channels"):
        train_world_model(changed, resume=True, progress=False)


@pytest.mark.skipif(sys.platform != "linux", reason="torchrun gloo path checked on linux CI")
def test_train_cli_runs_under_torchrun_with_two_processes(tiny_dataset, tmp_path):
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    over = tiny_overrides(tiny_dataset, tmp_path / "ddp") + ["train.vae_steps=2", "train.dynamics_steps=2"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "vidworld.cli", "train", "configs/demo.yaml", *over, "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "train_summary.json").read_text())
    assert summary["num_processes"] == 2
    DiffusionWorldModel.from_pretrained(tmp_path / "ddp" / "model")


def test_train_with_a_transformer_history_encoder(tiny_dataset, tmp_path):
    over = tiny_overrides(tiny_dataset, tmp_path / "run") + [
        "train.vae_steps=2", "train.dynamics_steps=3", "diffusion.history.enabled=true",
        "diffusion.history.length=5", "diffusion.history.dim=8", "diffusion.history.layers=1",
        "diffusion.history.heads=2"]
    out = train_world_model(load_experiment("configs/demo.yaml", over), progress=False)
    assert out.summary["history_params"] > 0
    loaded = load_world_model(out.model_dir)
    assert loaded.context_length == 5 and loaded.denoiser_context == 3 and loaded.history is not None
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 5, 3, 16, 16), generator=g, dtype=torch.uint8)
    state = loaded.init(frames, torch.zeros(2, 4, dtype=torch.long))
    assert loaded.features(state).shape == (2, loaded.feature_dim) == (2, 8 + 4 * 4 * 4)
    state, out_a = out.model.step(out.model.init(frames, torch.zeros(2, 4, dtype=torch.long)), torch.tensor([0, 1]),
                                  generator=torch.Generator().manual_seed(1))
    _, out_b = loaded.step(loaded.init(frames, torch.zeros(2, 4, dtype=torch.long)), torch.tensor([0, 1]),
                           generator=torch.Generator().manual_seed(1))
    assert torch.equal(out_a.latent, out_b.latent) and torch.equal(loaded.value(state), out.model.value(state))
