"""bench/fidelity.py's `--vae-from`: a dynamics-settings row starts from another row's finished VAE (copied
byte for byte, its training minutes carried into the new row), and is refused when a VAE setting differs.
Tiny config on the committed fixture; a few seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench.fidelity as fidelity
from vidworld.train.loop import stage_seconds

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny" / "diffusion.yaml"


def test_vae_from_reuses_the_vae_and_refuses_other_vae_settings(tmp_path: Path, monkeypatch,
                                                                 cartpole_fixture: Path) -> None:
    monkeypatch.setattr(fidelity, "RUNS", tmp_path)
    data = [f"data.path={cartpole_fixture}"]
    base = fidelity.run_experiment(TINY, "base", str(cartpole_fixture), data, horizon=2)
    lighter = fidelity.run_experiment(TINY, "heads", str(cartpole_fixture), [*data, "diffusion.heads.channels=[4,8]"],
                                      horizon=2, vae_from="base")
    runs = tmp_path / TINY.stem
    weights = "diffusion_pytorch_model.safetensors"
    assert (runs / "heads" / "vae" / weights).read_bytes() == (runs / "base" / "vae" / weights).read_bytes()
    assert lighter["vae_val_psnr_db"] == pytest.approx(base["vae_val_psnr_db"])
    assert (runs / "heads" / "stage_dynamics").is_dir()  # its own dynamics stage was trained
    # the VAE's minutes count in the new row: its training loop's time in the run it came from (nan if its
    # stage record were not carried over), plus this call's encoding of the data with it
    summary = json.loads((runs / "heads" / "train_summary.json").read_text())
    assert summary["vae_minutes"] >= stage_seconds(runs / "base" / "stage_vae") / 60 > 0
    assert lighter["train_minutes"] == pytest.approx(summary["vae_minutes"] + summary["dynamics_minutes"])
    with pytest.raises(SystemExit, match="diffusion.vae.kl_weight"):
        fidelity.run_experiment(TINY, "kl", str(cartpole_fixture), [*data, "diffusion.vae.kl_weight=0.5"],
                                horizon=2, vae_from="base")
    assert not (runs / "kl").exists()
