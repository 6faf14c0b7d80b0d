"""Reliability of `vidworld train` around its run folder: no stale resume, exact logs after a resume, no
temps left behind by a kill, and errors before any work."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.train.conftest import tiny_overrides
from vidworld.cli import main
from vidworld.experiment import load_experiment
from vidworld.train.run import train_world_model


def _cfg(data, run, *extra):
    return load_experiment("configs/demo.yaml", tiny_overrides(data, run) + list(extra))


def test_fresh_run_into_a_used_run_dir_refuses_and_overwrite_starts_over(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    short = ("train.vae_steps=2", "train.dynamics_steps=2")
    train_world_model(_cfg(tiny_dataset, run, *short), progress=False)
    other = _cfg(tiny_dataset, run, *short, "train.dynamics_lr=0.01", "train.seed=3")
    with pytest.raises(ValueError, match="already holds a run .*--resume .*--overwrite"):
        train_world_model(other, progress=False)
    # the old run's checkpoints must not win a later resume of the new experiment
    with pytest.raises(ValueError, match=r"other settings .*train.dynamics_lr: run 0.001 vs now 0.01"):
        train_world_model(other, resume=True, progress=False)
    train_world_model(other, overwrite=True, progress=False)
    import yaml

    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["dynamics_lr"] == 0.01 and saved["train"]["seed"] == 3
    # a longer budget is the one change a resume accepts
    longer = _cfg(tiny_dataset, run, "train.vae_steps=2", "train.dynamics_steps=3", "train.dynamics_lr=0.01",
                  "train.seed=3")
    train_world_model(longer, resume=True, progress=False)
    rows = [json.loads(x) for x in (run / "stage_dynamics" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]


def test_resumed_log_equals_an_uninterrupted_one_even_mid_window(tiny_dataset, tmp_path):
    # log every 3 steps, checkpoint every 2: the kill after step 2 falls inside the window of steps 1-3
    extra = ("train.log_every=3", "train.checkpoint_every=2", "train.dynamics_steps=4", "train.vae_steps=4")
    whole = tmp_path / "whole"
    train_world_model(_cfg(tiny_dataset, whole, *extra), progress=False)
    killed = tmp_path / "killed"
    cfg = _cfg(tiny_dataset, killed, *extra)
    train_world_model(cfg, progress=False)
    # simulate a kill after the dynamics checkpoint at step 2: newer checkpoint and outputs gone, and the
    # log holds a row of step 3 plus a torn last line (written after that checkpoint)
    shutil.rmtree(killed / "stage_dynamics" / "checkpoints" / "checkpoint_4")
    shutil.rmtree(killed / "model")
    log = killed / "stage_dynamics" / "log.jsonl"
    log.write_text(log.read_text().splitlines()[0] + "\n" + '{"stage": "dynamics", "st')
    train_world_model(cfg, resume=True, progress=False)
    for stage in ("stage_vae", "stage_dynamics"):
        assert (killed / stage / "log.jsonl").read_text() == (whole / stage / "log.jsonl").read_text()


def test_stale_temps_of_a_killed_write_are_removed(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    cfg = _cfg(tiny_dataset, run, "train.vae_steps=2", "train.dynamics_steps=2")
    train_world_model(cfg, progress=False)
    for name in (".model.tmpab12cd", ".vae.tmp99xx", ".config.yaml.tmp123-abcdef12.yaml"):
        (run / name).mkdir() if "yaml" not in name else (run / name).write_text("half")
    (run / "stage_dynamics" / "checkpoints" / ".checkpoint_2.tmp").mkdir()
    train_world_model(cfg, resume=True, progress=False)
    leftovers = [p.name for p in run.rglob(".*")]
    assert not leftovers, leftovers


def test_interrupted_model_folder_swap_keeps_the_old_model(tmp_path):
    from vidworld.atomic import remove_stale_temps

    # a kill between "move the old model aside" and "rename the new one in" leaves only .model.old
    (tmp_path / ".model.old").mkdir()
    (tmp_path / ".model.old" / "world_model.json").write_text("{}")
    remove_stale_temps(tmp_path)
    assert (tmp_path / "model" / "world_model.json").is_file() and not (tmp_path / ".model.old").exists()


@pytest.mark.parametrize("args, message", [
    (["run_dir={f}/sub"], "run_dir: cannot create folder"),
    (["train.checkpoint_every=0"], "config key 'train.checkpoint_every': must be >= 1, got 0"),
    (["model.kind=nope"], "model.kind 'nope' is not a world-model kind"),
    (["model.kind=copy_last"], "model.kind 'copy_last' has nothing to train"),
])
def test_train_command_errors_are_one_line_before_any_work(tiny_dataset, tmp_path, capsys, args, message):
    f = tmp_path / "file"
    f.write_text("x")
    over = [a.format(f=f) for a in args]
    code = main(["train", "configs/demo.yaml", *tiny_overrides(tiny_dataset, tmp_path / "r"), "--no-progress", *over])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r").exists() or args[0].startswith("model.kind=copy")
