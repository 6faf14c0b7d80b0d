"""Bad input through the real CLI, in process: one line "vidworld <cmd>: error: ..." naming the flag / key /
file / value and what was expected, exit code 2, nothing created or changed. One test per class of bug that
bench/bad_inputs.py found (a traceback or an exit 0 on bad input); the bench runs the whole battery."""

from __future__ import annotations

import json
import shutil
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.models.tiny import tiny_world_on_disk
from vidworld.cli import main
from vidworld.config import ConfigError
from vidworld.data.store import EpisodeStore
from vidworld.data.video import write_gif, write_mp4, write_video
from vidworld.experiment import load_experiment


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    """A real 16x16 CartPole dataset, a tiny model saved with it as its dataset, and a regular file."""
    w = tiny_world_on_disk(tmp_path_factory.mktemp("bad_inputs"))
    w.model.meta["env_id"] = "CartPole-v1"
    w.model.save_pretrained(w.model_dir)
    w.file = w.root / "notes.txt"
    w.file.write_text("not a folder\n")
    return w


def fails(capsys, argv: list[str], *needles: str) -> str:
    """Run `vidworld argv`; assert exit 2 and ONE error line holding every needle; return that line."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip()]
    assert code == 2, err
    assert "Traceback" not in err, err
    errors = [ln for ln in lines if ln.startswith(f"vidworld {argv[0]}: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def model_copy(world, tmp_path: Path, edit=None) -> Path:
    """The world's model copied to tmp_path/model, its world_model.json edited in place by `edit(info)`."""
    dst = tmp_path / "model"
    shutil.copytree(world.model_dir, dst)
    if edit is not None:
        info = json.loads((dst / "world_model.json").read_text())
        edit(info)
        (dst / "world_model.json").write_text(json.dumps(info))
    return dst


# --- collect: flag values are range-checked before anything is made ------------------------------------
@pytest.mark.parametrize("flags, needles", [
    (["--frame-size", "100000"], ["--frame-size 100000", "must be in [1, 1024]"]),  # was a 28 GiB MemoryError
    (["--max-episode-steps", "0"], ["--max-episode-steps 0", "must be >= 1"]),  # gymnasium's own text before
    (["--fps", "0"], ["--fps 0", "must be >= 1"]),  # ffmpeg failed after the manifest (fps 0) was written
    (["--seed", "-1"], ["--seed -1", "must be in [0, 4294967296)"]),  # "expected non-negative integer"
    (["--env", ""], ["--env", "gymnasium env id"]),
])
def test_collect_flags_out_of_range_name_the_flag_and_create_nothing(tmp_path, capsys, flags, needles):
    out = tmp_path / "out"
    fails(capsys, ["collect", "--steps", "5", "--frame-size", "16", "--out", out, "--no-progress", *flags],
          *needles)
    assert not out.exists()


def test_collect_refuses_an_empty_out_instead_of_writing_into_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fails(capsys, ["collect", "--steps", "5", "--frame-size", "16", "--out", "", "--no-progress"], "--out", "empty")
    assert list(tmp_path.iterdir()) == []


def test_collect_refuses_an_external_folder_of_videos(world, tmp_path, capsys):
    ext = shutil.copytree(world.data / "episodes", tmp_path / "ext")  # mp4 + npz, no manifest: read-only
    before = sorted(p.name for p in ext.iterdir())
    fails(capsys, ["collect", "--steps", "5", "--frame-size", "16", "--out", ext, "--no-progress"],
          str(ext), "external dataset")
    assert sorted(p.name for p in ext.iterdir()) == before  # no manifest.json / episodes/ added


def test_collect_env_kwargs_the_env_does_not_take(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("env: {env_kwargs: {gravity_x: 3}}\n")  # was a TypeError traceback from gymnasium
    fails(capsys, ["collect", "--config", config, "--steps", "5", "--out", tmp_path / "out", "--no-progress"],
          "env_kwargs", "gravity_x", "CartPole-v1")


def test_collect_config_values_are_range_checked_by_their_key(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("steps: 5\nfps: 0\n")
    fails(capsys, ["collect", "--config", config, "--out", tmp_path / "out", "--no-progress"],
          "config key 'fps': must be >= 1, got 0")
    config.write_text("steps: 5\nenv: {frame_size: 0}\n")
    fails(capsys, ["collect", "--config", config, "--out", tmp_path / "out", "--no-progress"],
          "config key 'env.frame_size': must be in [1, 1024], got 0")


# --- experiment configs: the dotted key of every range error -------------------------------------------
@pytest.mark.parametrize("override, message", [
    ("data.val_fraction=1.5", "config key 'data.val_fraction': must be in [0, 1), got 1.5"),  # at load, not later
    ("collect.steps=0", "config key 'collect.steps': must be >= 1, got 0"),  # demo then trained on nothing
    ("collect.fps=0", "config key 'collect.fps': must be >= 1, got 0"),
    ("collect.env.frame_size=0", "config key 'collect.env.frame_size': must be in [1, 1024], got 0"),
    ("collect.env.max_episode_steps=0", "config key 'collect.env.max_episode_steps': must be >= 1"),
    # a component's plain "<field> must ..." ValueError gets its dotted key too
    ("model.context_length=0", "config key 'model.context_length': must be >= 1, got 0"),
    ("plan.cem.uncertainty_penalty=.nan", "config key 'plan.cem.uncertainty_penalty': must be a finite number"),
    ("plan.cem.discount=2", "config key 'plan.cem.discount': must be in [0, 1], got 2.0"),
])
def test_experiment_range_errors_name_the_dotted_key(override, message):
    with pytest.raises(ConfigError) as info:
        load_experiment(None, [override])
    assert message in str(info.value) and "\n" not in str(info.value)


# --- world_model.json fields generic code reads are checked at load -------------------------------------
@pytest.mark.parametrize("edit, needles", [
    (lambda i: i.update(kind=["diffusion"]), ["'kind' is ['diffusion']", "expected a string"]),  # unhashable
    (lambda i: i["action_spec"].update(n="two"), ["action_spec.n is 'two'", "integer >= 1"]),  # '>' int vs str
    (lambda i: i["action_spec"].update(n=0), ["action_spec.n is 0"]),
    (lambda i: i.update(meta=5), ["'meta' is 5", "expected an object"]),  # 'int' object is not iterable
    (lambda i: i["meta"].update(env_id=42), ["meta.env_id is 42"]),  # plan: 'int' has no 'startswith'
    (lambda i: i["meta"].update(val_fraction="most"), ["meta.val_fraction is 'most'"]),
])
def test_a_malformed_world_model_json_is_one_line_naming_the_field(world, tmp_path, capsys, edit, needles):
    model = model_copy(world, tmp_path, edit)
    fails(capsys, ["eval-wm", "--model", model, "--out", tmp_path / "eval"], "world_model.json", *needles)
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("info, needle", [
    ({"context_length": 3, "frame_size": "big"}, "frame_size is 'big'"),  # reached consumers as a string
    ({"context_length": "3", "frame_size": 16}, "context_length is '3'"),
    ({"frame_size": 16}, "context_length is None"),
])
def test_a_malformed_copy_last_folder(world, tmp_path, capsys, info, needle):
    folder = tmp_path / "cl"
    folder.mkdir()
    base = {"kind": "copy_last", "format_version": 1, "action_spec": {"n": 2}}
    (folder / "world_model.json").write_text(json.dumps({**base, **info}))
    fails(capsys, ["eval-wm", "--model", folder, "--data", world.data, "--out", tmp_path / "eval"], needle)


# --- rollout: actions, files, video settings, device ----------------------------------------------------
@pytest.mark.parametrize("make, needles", [
    (lambda d: ["--actions", "99999999999999999999"], ["99999999999999999999", "--actions"]),  # OverflowError
    (lambda d: ["--actions-file", _bytes(d / "a.npy", b"\x93NUMPY garbage" * 50)], ["a.npy", "not a readable .npy"]),
    (lambda d: ["--actions-file", _bytes(d / "a.txt", b"\xff\xfe\x00\x81")], ["a.txt", "not UTF-8"]),
    (lambda d: ["--fps", "0"], ["--fps must be a finite number > 0, got 0.0"]),  # exit 0 and a broken video
    (lambda d: ["--fps=-5"], ["--fps"]),  # OverflowError inside Pillow
    (lambda d: ["--fps", "nan"], ["--fps"]),  # a traceback printed by the GIF writer's __del__
    (lambda d: ["--upscale", "100000"], ["--upscale 100000", "4096"]),  # tried to allocate 145 TB
    (lambda d: ["--device", "toaster"], ["--device", "'toaster' is not a torch device"]),
    (lambda d: ["--device", "cuda:0"] if not _has_cuda() else ["--device", "cuda:99"], ["--device", "cuda"]),
])
def test_rollout_bad_values_are_one_line(world, tmp_path, capsys, make, needles):
    out = tmp_path / "r.gif"
    fails(capsys, ["rollout", "--model", world.model_dir, "--out", out, *make(tmp_path)], *needles)
    assert not out.exists()


def test_rollout_out_is_a_folder(world, tmp_path, capsys):
    (tmp_path / "x.gif").mkdir()
    fails(capsys, ["rollout", "--model", world.model_dir, "--out", tmp_path / "x.gif"], "is a folder")


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("write", [write_gif, write_mp4, write_video])
@pytest.mark.parametrize("fps", [0, -5, float("nan"), float("inf")])
def test_video_writers_refuse_a_bad_frame_rate_before_writing(tmp_path, write, fps):
    path = tmp_path / f"v.{'gif' if write is write_gif else 'mp4'}"
    with pytest.raises(ValueError, match="fps must be a finite number > 0"):
        write(path, np.zeros((2, 8, 8, 3), np.uint8), fps=fps)
    assert not path.exists()


# --- plan: flags checked (and named) before the model loads ---------------------------------------------
def _plan_args(**over) -> Namespace:
    base = dict(horizon=None, population=None, iterations=None, uncertainty_samples=None,
                uncertainty_penalty=None, planner="cem", episodes=1, max_episode_steps=3, seed=0,
                precision="fp32", no_video=True, config=None)
    return Namespace(**{**base, **over})


@pytest.mark.parametrize("flag, value, needle", [
    ("--uncertainty-penalty", "nan", "--uncertainty-penalty nan: must be a finite number"),  # ran, NaN scores
    ("--uncertainty-penalty", "inf", "--uncertainty-penalty inf: must be a finite number"),
    ("--horizon", "0", "--horizon 0: must be >= 1"),
    ("--sampler-steps", "0", "--sampler-steps must be >= 1"),
])
def test_plan_flags_are_named(tmp_path, capsys, flag, value, needle):
    # a missing model: the flag must be refused first, without loading anything
    fails(capsys, ["plan", "--model", tmp_path / "no_model", flag, value], needle)


def test_plan_with_a_small_population_scales_the_elites():
    from vidworld.planning.run import plan_config

    cfg = plan_config(_plan_args(population=2))  # refused before: "elites (4) must be <= population (2)"
    assert (cfg.cem.population, cfg.cem.elites) == (2, 1)


# --- eval-wm and datasets -------------------------------------------------------------------------------
def test_eval_seed_and_a_file_as_dataset(world, tmp_path, capsys):
    fails(capsys, ["eval-wm", "--model", world.model_dir, "--seed=-1", "--out", tmp_path / "e"], "--seed")
    fails(capsys, ["eval-wm", "--model", world.model_dir, "--data", world.file, "--out", tmp_path / "e"],
          f"{world.file} is a file, not a dataset folder")


def test_eval_several_models_are_all_checked_against_the_data_before_any_is_evaluated(world, tmp_path, capsys):
    other = model_copy(world, tmp_path, lambda i: i["meta"].update(env_id="Acrobot-v1"))
    fails(capsys, ["eval-wm", "--model", world.model_dir, "--model", other, "--out", tmp_path / "e"],
          f"--model {other}", "Acrobot-v1")
    assert not (tmp_path / "e").exists()  # the first model was not evaluated first


def test_opening_a_file_as_a_dataset(world):
    with pytest.raises(ValueError, match="is a file, not a dataset folder"):
        EpisodeStore.open(world.file)


def test_evaluation_refuses_a_replay_env_other_than_the_datasets(world, tmp_path):
    """The demo passes its collect.env: a data.path holding another env's episodes crashed deep inside the
    replay (CartPole's step unpacking Acrobot's state) after training on them."""
    from vidworld.envs.pixels import PixelEnvConfig
    from vidworld.eval.config import EvalConfig
    from vidworld.eval.run import evaluate_world_model

    with pytest.raises(ValueError, match="holds CartPole-v1 episodes, but the real env given to replay them is "
                                         "Acrobot-v1"):
        evaluate_world_model(world.model, str(world.data), EvalConfig(horizon=2), tmp_path / "e",
                             env_cfg=PixelEnvConfig("Acrobot-v1", frame_size=16), progress=False)


def test_controllability_shifts_actions_within_the_real_envs_action_space(world):
    """A model may take more actions than the env has (check_dataset allows it); the counterfactual actions
    were drawn from the model's n and crashed CartPole's step with action 2."""
    import torch

    from vidworld.data.dataset import SegmentDataset
    from vidworld.envs.pixels import PixelEnvConfig
    from vidworld.eval.config import EvalConfig
    from vidworld.eval.run import _controllability
    from vidworld.protocol import ActionSpec
    from vidworld.world_models.copy_last import CopyLastFrameModel

    model = CopyLastFrameModel(ActionSpec(n=3), context_length=3, frame_size=16)
    clips = SegmentDataset(world.data, 3, 2, split="all")
    result = _controllability(model, clips, EvalConfig(horizon=2, controllability_clips=2),
                              PixelEnvConfig("CartPole-v1", frame_size=16), torch.Generator().manual_seed(0))
    assert result.mean == 0.0  # copy-last ignores actions: both futures predicted alike


# --- the CLI: a library's own ValueError is a bug (traceback), not a one-line user error ----------------
@pytest.fixture
def failing_command(monkeypatch):
    """`vidworld failing`: its run() calls what the test puts in `module.body`."""
    import argparse
    import sys
    import types

    from vidworld import cli

    module = types.ModuleType("vidworld_failing_command")
    module.body = lambda: None
    module.add_arguments = lambda p: None

    def run(args: argparse.Namespace) -> int:
        module.body()
        return 0

    module.run = run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli.COMMANDS, "failing", (module.__name__, "a test command"))
    monkeypatch.delenv("VIDWORLD_TRACEBACK", raising=False)
    return module


def _cartpole_given_acrobots_state() -> None:
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    env = CartPoleEnv()
    env.reset(seed=0)
    env.state = np.zeros(6)  # Acrobot records 6 numbers
    env.step(0)  # ValueError: too many values to unpack (expected 4), raised inside gymnasium


@pytest.mark.parametrize("body", [
    _cartpole_given_acrobots_state,
    lambda: json.loads("{oops"),  # JSONDecodeError (the standard library)
])
def test_a_value_error_raised_inside_a_library_keeps_its_traceback(failing_command, body):
    """It used to be printed as one line: the demo's "too many values to unpack (expected 4)" (gymnasium's
    CartPole.step given Acrobot's state) looked like a user error while it was unchecked input."""
    failing_command.body = body
    with pytest.raises(ValueError):
        main(["failing"])


def test_vidworlds_own_value_errors_stay_one_line(failing_command, capsys):
    from vidworld.data.spaces import action_space_from_json

    failing_command.body = lambda: action_space_from_json({"type": "discrete", "n": "two"})
    assert main(["failing"]) == 2
    assert capsys.readouterr().err.startswith("vidworld failing: error: bad action_space")


def test_demo_refuses_a_data_path_of_another_env_before_training(tmp_path, capsys):
    """The demo reused any dataset at data.path; another env's episodes were trained on without a word."""
    from vidworld.cli import main
    from vidworld.data.collect import CollectConfig, collect
    from vidworld.envs.pixels import PixelEnvConfig

    collect(CollectConfig(env=PixelEnvConfig(id="Acrobot-v1", frame_size=16), steps=20, out=str(tmp_path / "d")),
            progress=False)
    code = main(["demo", f"data.path={tmp_path / 'd'}", f"run_dir={tmp_path / 'run'}", "collect.env.frame_size=16"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "holds Acrobot-v1 episodes" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run" / "stage_vae").exists()
