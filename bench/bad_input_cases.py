"""The battery of bench/bad_inputs.py: bad inputs for every `vidworld` command, and how to make them.

A case is `case(command, name, expect=..., keep=..., extra=...)(argv)`: `argv(w, d)` returns the arguments
after `vidworld`, building whatever damaged file or folder it needs inside `d` (the case's own empty folder,
also its working directory) from the valid ingredients of the world `w` (bench/bad_inputs.py `World`:
w.data, w.acrobot, w.data32, w.run, w.model, w.file, w.images). `expect`: a regex the one-line error must
match (the flag / key / file / value it has to name). `keep(w, d)`: files that must be byte-identical
afterwards. `extra=True`: a variation of a default case, run only with --all (keeps the default < 10 min).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "tiny" / "diffusion.yaml")

Argv = Callable[[Any, Path], list[str]]
PathFn = Callable[[Any, Path], Path]


@dataclass(frozen=True)
class Case:
    command: str
    name: str
    argv: Argv
    expect: str | None = None
    keep: Callable[[Any, Path], list[Path]] | None = None
    extra: bool = False


CASES: list[Case] = []


def case(command: str, name: str, expect: str | None = None, keep=None, extra: bool = False):
    def register(argv: Argv) -> Argv:
        CASES.append(Case(command, name, argv, expect, keep, extra))
        return argv

    return register


# ------------------------------------------------------------------------------------- damaging helpers
def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def garbage(path: Path, n: int = 4096) -> Path:
    return write(path, np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes())


def truncate(path: Path, keep: float = 0.5) -> Path:
    return write(path, path.read_bytes()[: int(path.stat().st_size * keep)])


def edit_json(path: Path, fn: Callable[[Any], Any]) -> Path:
    """fn edits the parsed JSON in place (returns None) or returns a replacement."""
    data = json.loads(path.read_text())
    out = fn(data)
    return write(path, json.dumps(data if out is None else out))


def png(path: Path, array: np.ndarray) -> Path:
    import imageio.v3 as iio

    iio.imwrite(path, array)
    return path


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def run_copy(w, d: Path) -> Path:
    """A copy of the world's finished training run in d/old, its config.yaml pointing at the new place (a
    resume compares the whole config, run_dir too)."""
    import yaml

    run = copy(w.run, d / "old")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["run_dir"] = str(run)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return run


def model_with(fn: Callable[[Path], Any]) -> PathFn:
    """A copy of the world's model in the case folder, damaged by fn(model_folder)."""
    def make(w, d: Path) -> Path:
        m = copy(w.model, d / "model")
        fn(m)
        return m
    return make


def info_with(fn: Callable[[Any], Any]) -> PathFn:
    """A copy of the world's model whose world_model.json is edited by fn (see edit_json)."""
    return model_with(lambda m: edit_json(m / "world_model.json", fn))


def data_with(fn: Callable[[Path], Any], src: str = "data") -> PathFn:
    """A copy of one of the world's datasets, damaged by fn(dataset_folder)."""
    def make(w, d: Path) -> Path:
        data = copy(getattr(w, src), d / src)
        fn(data)
        return data
    return make


def at(fn: PathFn | None, w, d: Path, default: Path) -> str:
    return str(fn(w, d) if fn is not None else default)


# -------------------------------------------------------------------------------- command line builders
def C(*extra: str, out: PathFn | None = None) -> Argv:
    """collect 5 steps of 16 px frames into the case folder (or `out`), plus `extra`."""
    return lambda w, d: ["collect", "--no-progress", "--steps", "5", "--frame-size", "16",
                         "--out", at(out, w, d, d / "out"), *extra]


def T(*extra: str, data: PathFn | None = None, run_dir: PathFn | None = None, config: PathFn | None = None) -> Argv:
    """train (the tiny config unless `config`) on the tiny dataset into the case folder, plus `extra`."""
    return lambda w, d: ["train", at(config, w, d, Path(TINY)), f"run_dir={at(run_dir, w, d, d / 'run')}",
                         f"data.path={at(data, w, d, w.data)}", "--no-progress", *extra]


def E(*extra: str, model: PathFn | None = None) -> Argv:
    return lambda w, d: ["eval-wm", "--model", at(model, w, d, w.model), "--horizon", "2", "--max-clips", "2",
                         "--out", str(d / "eval"), *extra]


def R(*extra: str, model: PathFn | None = None, out: str = "r.gif") -> Argv:
    return lambda w, d: ["rollout", "--model", at(model, w, d, w.model), "--out", str(d / out), *extra]


def P(*extra: str, model: PathFn | None = None) -> Argv:
    """plan for 1 episode of 3 steps with 4 candidates (a wrongly accepted input still ends in seconds)."""
    return lambda w, d: ["plan", "--model", at(model, w, d, w.model), "--episodes", "1", "--max-episode-steps",
                         "3", "--population", "4", "--horizon", "2", "--iterations", "1", "--no-video",
                         "--out", str(d / "plan"), *extra]


def D(*extra: str) -> Argv:
    """demo on the tiny config collecting 60 steps of 16 px frames into the case folder, plus `extra`."""
    return lambda w, d: ["demo", "--config", TINY, "--no-progress", f"run_dir={d / 'run'}",
                         f"data.path={d / 'data'}", "collect.steps=60", "collect.env.frame_size=16", *extra]


def file_under(w, d: Path) -> Path:  # a path whose parent is a regular file
    return w.file / "sub"


def the_file(w, d: Path) -> Path:
    return w.file


def text_file(content: str | bytes, name: str = "c.yaml") -> PathFn:
    return lambda w, d: write(d / name, content)


KEEP_FILE = lambda w, d: [w.file]  # noqa: E731


# ------------------------------------------------------------------------------------------------- cli
case("cli", "unknown command", "nosuch")(lambda w, d: ["nosuch"])
case("cli", "no command", "command", extra=True)(lambda w, d: [])

# --------------------------------------------------------------------------------------------- collect
case("collect", "unknown env id", "CartPol-v1")(C("--env", "CartPol-v1"))
case("collect", "empty env id", "--env")(C("--env", ""))
case("collect", "module:id env of a missing module", "nosuchpkg")(C("--env", "nosuchpkg:Foo-v0"))
case("collect", "frame size 0", "--frame-size")(C("--frame-size", "0"))
case("collect", "negative frame size", "--frame-size")(C("--frame-size", "-16"))
case("collect", "absurd frame size 100000", "--frame-size")(C("--frame-size", "100000"))
case("collect", "frame size not an int", "--frame-size")(C("--frame-size", "sixteen"))
case("collect", "steps 0", "--steps")(C("--steps", "0"))
case("collect", "negative steps", "--steps")(C("--steps", "-5"))
case("collect", "--out under a regular file", "notes.txt")(C(out=file_under))
case("collect", "--out is a regular file", "notes.txt", keep=KEEP_FILE)(C(out=the_file))
case("collect", "--out empty", "--out")(C(out=lambda w, d: ""))
case("collect", "--out holds another env's data", "Acrobot",
     keep=lambda w, d: [d / "acrobot" / "manifest.json"])(C(out=data_with(lambda p: None, "acrobot")))
case("collect", "--out holds another frame size", "32",
     keep=lambda w, d: [d / "data32" / "manifest.json"])(C(out=data_with(lambda p: None, "data32")))
case("collect", "--out manifest.json not JSON", "manifest.json",
     keep=lambda w, d: [d / "bad" / "manifest.json"])(C(out=lambda w, d: write(d / "bad" / "manifest.json", "{oops").parent))
case("collect", "--out manifest.json a JSON list", "manifest.json")(
    C(out=lambda w, d: write(d / "bad" / "manifest.json", "[1, 2]").parent))
case("collect", "--out manifest.json missing fields", "manifest.json")(
    C(out=lambda w, d: write(d / "bad" / "manifest.json", '{"env_id": "CartPole-v1"}').parent))
case("collect", "--out an external (read-only) folder of mp4s", "read-only")(
    C(out=lambda w, d: copy(w.data / "episodes", d / "ext")))
case("collect", "--out lists an episode whose files are gone", "ep_000000")(
    C(out=data_with(lambda p: os.remove(p / "episodes" / "ep_000000.mp4"))))
case("collect", "frame skip 0", "--frame-skip")(C("--frame-skip", "0"))
case("collect", "max episode steps 0", "--max-episode-steps")(C("--max-episode-steps", "0"))
case("collect", "negative max episode steps", "--max-episode-steps")(C("--max-episode-steps", "-3"))
case("collect", "fps 0", "--fps")(C("--fps", "0"))
case("collect", "negative fps", "--fps")(C("--fps", "-15"))
case("collect", "negative seed", "--seed")(C("--seed", "-1"))
case("collect", "unknown policy", "greedy")(C("--policy", "greedy"))
case("collect", "--config missing", "nope.yaml")(C("--config", "nope.yaml"))
case("collect", "--config broken YAML", "line")(lambda w, d: C("--config", str(write(d / "c.yaml", "env: [CartPole")))(w, d))
case("collect", "--config unknown key", "stepz")(lambda w, d: C("--config", str(write(d / "c.yaml", "stepz: 5")))(w, d))
case("collect", "--config wrong type", "steps")(lambda w, d: C("--config", str(write(d / "c.yaml", "steps: many")))(w, d))
case("collect", "--config env as a string", "env")(lambda w, d: C("--config", str(write(d / "c.yaml", "env: CartPole-v1")))(w, d))
case("collect", "--config frame_size 0", "frame_size")(
    lambda w, d: ["collect", "--no-progress", "--out", str(d / "out"), "--config",
                  str(write(d / "c.yaml", "env: {frame_size: 0}\nsteps: 5"))])
case("collect", "--config env_kwargs the env does not take", "gravity_x")(
    lambda w, d: C("--config", str(write(d / "c.yaml", "env: {env_kwargs: {gravity_x: 3}}")))(w, d))

# ----------------------------------------------------------------------------------------------- train
case("train", "config file missing", "nope.yaml")(T(config=lambda w, d: d / "nope.yaml"))
case("train", "config is a folder", "directory|folder", extra=True)(T(config=lambda w, d: d))
case("train", "broken YAML", "line")(T(config=text_file("train: {vae_steps: [4\n")))
case("train", "tab-indented YAML", "tab", extra=True)(T(config=text_file("train:\n\tvae_steps: 4\n")))
case("train", "top level is a list", "mapping", extra=True)(T(config=text_file("- 1\n- 2\n")))
case("train", "binary garbage config", "UTF-8", extra=True)(T(config=text_file(b"\xff\xfe\x00\x81" * 64)))
case("train", "unknown top-level key", "foo", extra=True)(T("foo=1"))
case("train", "unknown nested key", "vae_stepz", extra=True)(T("train.vae_stepz=3"))
case("train", "unknown section", "nosuch", extra=True)(T("nosuch.key=1"))
case("train", "override without =", "vae_steps", extra=True)(T("train.vae_steps"))
case("train", "override with empty key", "=3", extra=True)(T("=3"))
case("train", "override value not YAML", "vae_steps", extra=True)(T("train.vae_steps=[1"))
case("train", "int key given text", "train.vae_steps", extra=True)(T("train.vae_steps=abc"))
case("train", "int key given 1.5", "train.vae_steps", extra=True)(T("train.vae_steps=1.5"))
case("train", "bool key given maybe", "train.tensorboard", extra=True)(T("train.tensorboard=maybe"))
case("train", "list key given a number", "block_out_channels", extra=True)(T("diffusion.vae.block_out_channels=8"))
case("train", "section given a value", "diffusion.vae", extra=True)(T("diffusion.vae=3"))
case("train", "vae_steps 0", "train.vae_steps")(T("train.vae_steps=0"))
case("train", "negative learning rate", "train.dynamics_lr", extra=True)(T("train.dynamics_lr=-1"))
case("train", "learning rate NaN", "train.vae_lr", extra=True)(T("train.vae_lr=.nan"))
case("train", "ema_decay 1", "train.ema_decay", extra=True)(T("train.ema_decay=1"))
case("train", "val_fraction 1.5", "data.val_fraction")(T("data.val_fraction=1.5"))
case("train", "negative val_fraction", "data.val_fraction", extra=True)(T("data.val_fraction=-0.1"))
case("train", "context_length 0", "model.context_length", extra=True)(T("model.context_length=0"))
case("train", "context_length longer than every episode", "context_length")(T("model.context_length=500"))
case("train", "unknown model kind", "bogus", extra=True)(T("model.kind=bogus"))
case("train", "kind with nothing to train", "copy_last", extra=True)(T("model.kind=copy_last"))
case("train", "unknown mixed precision", "mixed_precision", extra=True)(T("train.mixed_precision=fp8"))
case("train", "negative seed", "train.seed", extra=True)(T("train.seed=-1"))
case("train", "sampler steps 0", "diffusion.sampler.num_steps")(T("diffusion.sampler.num_steps=0"))
case("train", "empty VAE channel list", "block_out_channels")(T("diffusion.vae.block_out_channels=[]"))
case("train", "latent_channels 0", "latent_channels")(T("diffusion.vae.latent_channels=0"))
case("train", "denoiser channel 0", "channels", extra=True)(T("diffusion.denoiser.channels=[0]"))
case("train", "VAE deeper than the frames allow", "frame", extra=True)(
    T("diffusion.vae.block_out_channels=[4,4,4,4,4,4]", "diffusion.vae.blocks_per_level=[0,0,0,0,0,0]"))
case("train", "run_dir under a file", "notes.txt")(T(run_dir=file_under))
case("train", "run_dir is a file", "notes.txt", keep=KEEP_FILE, extra=True)(T(run_dir=the_file))
case("train", "run_dir holds a run, no --resume", "--resume", extra=True)(T(run_dir=run_copy))
case("train", "--resume with changed settings", "cond_dim")(
    T("diffusion.denoiser.cond_dim=32", "--resume", run_dir=run_copy))
case("train", "--resume with another dataset", "data.path", extra=True)(
    T("--resume", run_dir=run_copy, data=lambda w, d: w.acrobot))
case("train", "--resume and --overwrite", "overwrite", extra=True)(T("--resume", "--overwrite"))
case("train", "--resume with garbage config.yaml", "config.yaml", extra=True)(
    T("--resume", run_dir=lambda w, d: write(run_copy(w, d) / "config.yaml", "{{{: [").parent))
case("train", "--resume from truncated checkpoints", "checkpoint")(
    T("train.dynamics_steps=6", "--resume", run_dir=lambda w, d: [
        truncate(p) for p in run_copy(w, d).glob("stage_dynamics/checkpoints/*/*")] and d / "old"))
case("train", "--overwrite would delete the dataset", "dataset")(
    T("--overwrite", run_dir=lambda w, d: d / "r", data=lambda w, d: copy(w.data, d / "r" / "data")))
case("train", "data.path missing", "nope", extra=True)(T(data=lambda w, d: d / "nope"))
case("train", "data.path is a file", "notes.txt")(T(data=the_file))
case("train", "data.path an empty folder", "empty", extra=True)(T(data=lambda w, d: (d / "empty").mkdir() or d / "empty"))
case("train", "dataset manifest.json garbage", "manifest.json", extra=True)(T(data=data_with(lambda p: garbage(p / "manifest.json"))))
case("train", "dataset manifest.json missing fields", "manifest.json", extra=True)(
    T(data=data_with(lambda p: edit_json(p / "manifest.json", lambda m: m.pop("action_space") and None))))
case("train", "every video of the dataset garbage", "readable|ep_0")(
    T(data=data_with(lambda p: [garbage(v) for v in p.glob("episodes/*.mp4")])))
case("train", "every npz of the dataset garbage", "npz|ep_0", extra=True)(
    T(data=data_with(lambda p: [garbage(v) for v in p.glob("episodes/*.npz")])))
case("train", "external folder of mp4s without actions", "npz|npy|actions", extra=True)(
    T(data=lambda w, d: [p.unlink() for p in copy(w.data / "episodes", d / "ext").glob("*.npz")] and d / "ext"))

# --------------------------------------------------------------------------------------------- eval-wm
case("eval-wm", "--model missing", "nope")(E(model=lambda w, d: d / "nope"))
case("eval-wm", "--model is a file", "notes.txt", extra=True)(E(model=the_file))
case("eval-wm", "--model is a dataset folder", "world_model.json", extra=True)(E(model=lambda w, d: w.data))
case("eval-wm", "--val-fraction 1 (nothing left to train on)", "--val-fraction")(E("--val-fraction", "1"))
case("eval-wm", "--val-fraction negative", "--val-fraction", extra=True)(E("--val-fraction", "-0.2"))
case("eval-wm", "world_model.json deleted", "world_model.json", extra=True)(
    E(model=model_with(lambda m: os.remove(m / "world_model.json"))))
case("eval-wm", "world_model.json not JSON", "world_model.json")(
    E(model=model_with(lambda m: write(m / "world_model.json", "{kind: diffusion"))))
case("eval-wm", "world_model.json empty", "world_model.json", extra=True)(
    E(model=model_with(lambda m: write(m / "world_model.json", ""))))
case("eval-wm", "world_model.json a JSON list", "world_model.json", extra=True)(E(model=info_with(lambda i: [i])))
case("eval-wm", "world_model.json without kind", "kind", extra=True)(E(model=info_with(lambda i: i.pop("kind") and None)))
case("eval-wm", "unknown kind", "transformer")(E(model=info_with(lambda i: i.update(kind="transformer"))))
case("eval-wm", "kind is a list", "kind")(E(model=info_with(lambda i: i.update(kind=["diffusion"]))))
case("eval-wm", "future format_version", "format_version")(E(model=info_with(lambda i: i.update(format_version=99))))
case("eval-wm", "format_version a string", "format_version", extra=True)(
    E(model=info_with(lambda i: i.update(format_version="two"))))
case("eval-wm", "action_spec missing", "action_spec")(E(model=info_with(lambda i: i.pop("action_spec") and None)))
case("eval-wm", "action_spec n a string", "action_spec")(E(model=info_with(lambda i: i["action_spec"].update(n="two"))))
case("eval-wm", "action_spec n 0", "action_spec", extra=True)(E(model=info_with(lambda i: i["action_spec"].update(n=0))))
case("eval-wm", "action_spec n disagrees with the networks", "action")(
    E(model=info_with(lambda i: i["action_spec"].update(n=3))))
case("eval-wm", "sampler num_steps -1", "num_steps", extra=True)(E(model=info_with(lambda i: i["sampler"].update(num_steps=-1))))
case("eval-wm", "sampler unknown field", "sampler", extra=True)(E(model=info_with(lambda i: i["sampler"].update(steps=2))))
case("eval-wm", "meta not an object", "meta")(E(model=info_with(lambda i: i.update(meta=5))))
case("eval-wm", "recorded dataset gone, no --data", "gone", extra=True)(
    lambda w, d: ["eval-wm", "--model", str(info_with(lambda i: i["meta"].update(dataset=str(d / "gone")))(w, d)),
                  "--out", str(d / "eval")])
case("eval-wm", "vae weights deleted", "vae", extra=True)(
    E(model=model_with(lambda m: os.remove(m / "vae" / "diffusion_pytorch_model.safetensors"))))
case("eval-wm", "vae weights truncated", "vae")(
    E(model=model_with(lambda m: truncate(m / "vae" / "diffusion_pytorch_model.safetensors"))))
case("eval-wm", "vae weights garbage", "vae", extra=True)(
    E(model=model_with(lambda m: garbage(m / "vae" / "diffusion_pytorch_model.safetensors"))))
case("eval-wm", "denoiser folder deleted", "denoiser", extra=True)(E(model=model_with(lambda m: shutil.rmtree(m / "denoiser"))))
case("eval-wm", "denoiser config not JSON", "denoiser", extra=True)(
    E(model=model_with(lambda m: write(m / "denoiser" / "denoiser_config.json", "{"))))
case("eval-wm", "heads config of another shape", "heads", extra=True)(
    E(model=model_with(lambda m: edit_json(m / "heads" / "heads_config.json", lambda c: c.update(channels=[16, 16])))))
case("eval-wm", "value weights garbage", "value", extra=True)(
    E(model=model_with(lambda m: garbage(m / "value" / "diffusion_pytorch_model.safetensors"))))
case("eval-wm", "model meta names another env than the data", "Acrobot", extra=True)(
    E(model=info_with(lambda i: i["meta"].update(env_id="Acrobot-v1"))))
case("eval-wm", "copy_last model without context_length", "context_length", extra=True)(E(model=lambda w, d: write(
    d / "cl" / "world_model.json", json.dumps({"kind": "copy_last", "format_version": 1, "action_spec": {"n": 2},
                                               "frame_size": 16})).parent))
case("eval-wm", "copy_last model frame_size a string", "frame_size")(E(model=lambda w, d: write(
    d / "cl" / "world_model.json", json.dumps({"kind": "copy_last", "format_version": 1, "action_spec": {"n": 2},
                                               "context_length": 3, "frame_size": "big"})).parent))
case("eval-wm", "--data of another env", "Acrobot")(lambda w, d: E("--data", str(w.acrobot))(w, d))
case("eval-wm", "--data of another frame size", "32")(lambda w, d: E("--data", str(w.data32))(w, d))
case("eval-wm", "--data missing", "nope", extra=True)(lambda w, d: E("--data", str(d / "nope"))(w, d))
case("eval-wm", "--data is a file", "notes.txt")(lambda w, d: E("--data", str(w.file))(w, d))
case("eval-wm", "--horizon 0", "--horizon")(E("--horizon", "0"))
case("eval-wm", "negative horizon", "--horizon", extra=True)(E("--horizon", "-3"))
case("eval-wm", "--max-clips 0", "--max-clips", extra=True)(E("--max-clips", "0"))
case("eval-wm", "horizon longer than every episode", "window", extra=True)(E("--horizon", "1000"))
case("eval-wm", "--out under a file", "notes.txt")(lambda w, d: E("--out", str(file_under(w, d)))(w, d))
case("eval-wm", "--out is a file", "notes.txt", keep=KEEP_FILE, extra=True)(lambda w, d: E("--out", str(w.file))(w, d))
case("eval-wm", "negative seed", "--seed")(E("--seed=-1"))
case("eval-wm", "second --model of another env", "Acrobot")(
    lambda w, d: E("--model", str(info_with(lambda i: i["meta"].update(env_id="Acrobot-v1"))(w, d)))(w, d))
case("eval-wm", "second --model missing", "nope", extra=True)(lambda w, d: E("--model", str(d / "nope"))(w, d))

# --------------------------------------------------------------------------------------------- rollout
IMAGES = lambda w: [str(p) for p in w.images]  # noqa: E731
case("rollout", "text files as context images", "ctx.txt")(
    lambda w, d: R("--context-images", *[str(write(d / "ctx.txt", "not an image"))] * 3)(w, d))
case("rollout", "two context images for K=3", "K=3")(lambda w, d: R("--context-images", *IMAGES(w)[:2])(w, d))
case("rollout", "four context images for K=3", "K=3", extra=True)(lambda w, d: R("--context-images", *IMAGES(w), IMAGES(w)[0])(w, d))
case("rollout", "32x32 context images", "16x16")(
    lambda w, d: R("--context-images", *[str(png(d / "big.png", np.zeros((32, 32, 3), np.uint8)))] * 3)(w, d))
case("rollout", "grayscale context image", "gray.png", extra=True)(
    lambda w, d: R("--context-images", str(png(d / "gray.png", np.zeros((16, 16), np.uint8))), *IMAGES(w)[1:])(w, d))
case("rollout", "16-bit context image", "deep.png")(
    lambda w, d: R("--context-images", str(png(d / "deep.png", np.zeros((16, 16), np.uint16))), *IMAGES(w)[1:])(w, d))
case("rollout", "missing context image", "nope.png", extra=True)(lambda w, d: R("--context-images", "nope.png", *IMAGES(w)[1:])(w, d))
case("rollout", "context image is a folder", "folder|image", extra=True)(lambda w, d: R("--context-images", str(d), *IMAGES(w)[1:])(w, d))
case("rollout", "actions not numbers", "--actions")(R("--actions", "a,b"))
case("rollout", "actions empty", "--actions", extra=True)(R("--actions", ""))
case("rollout", "action 5 for a 2-action model", "5")(R("--actions", "0,5"))
case("rollout", "negative action", "-1", extra=True)(R("--actions=-1"))
case("rollout", "fractional action", "1.5", extra=True)(R("--actions", "1.5"))
case("rollout", "action beyond int64", "99999999999999999999")(R("--actions", "99999999999999999999"))
case("rollout", "--actions-file missing", "nope.npy", extra=True)(R("--actions-file", "nope.npy"))
case("rollout", "--actions-file garbage .npy", "acts.npy")(lambda w, d: R("--actions-file", str(garbage(d / "acts.npy")))(w, d))
case("rollout", "--actions-file float .npy", "acts.npy", extra=True)(
    lambda w, d: (np.save(d / "acts.npy", np.array([0.5, 1.5])), R("--actions-file", str(d / "acts.npy"))(w, d))[1])
case("rollout", "--actions-file 2-D .npy", "acts.npy", extra=True)(
    lambda w, d: (np.save(d / "acts.npy", np.zeros((2, 2), np.int64)), R("--actions-file", str(d / "acts.npy"))(w, d))[1])
case("rollout", "--actions-file .txt with words", "acts.txt")(lambda w, d: R("--actions-file", str(write(d / "acts.txt", "left right")))(w, d))
case("rollout", "--actions-file empty .txt", "acts.txt", extra=True)(lambda w, d: R("--actions-file", str(write(d / "acts.txt", "")))(w, d))
case("rollout", "--actions-file binary .txt", "acts.txt", extra=True)(
    lambda w, d: R("--actions-file", str(garbage(d / "acts.txt")))(w, d))
case("rollout", "--actions-file .csv suffix", "acts.csv")(lambda w, d: R("--actions-file", str(write(d / "acts.csv", "0,1")))(w, d))
case("rollout", "--out .avi", "avi")(R(out="r.avi"))
case("rollout", "--out without suffix", "--out", extra=True)(R(out="r"))
case("rollout", "--out under a file", "notes.txt")(lambda w, d: ["rollout", "--model", str(w.model), "--out", str(w.file / "r.gif")])
case("rollout", "--out is a folder named .gif", "x.gif")(lambda w, d: (d / "x.gif").mkdir() or R(out="x.gif")(w, d))
case("rollout", "--episode 99", "--episode")(R("--episode", "99"))
case("rollout", "--episode -1", "--episode", extra=True)(R("--episode=-1"))
case("rollout", "--start 1000", "--start", extra=True)(R("--start", "1000"))
case("rollout", "--start -1", "--start", extra=True)(R("--start=-1"))
case("rollout", "--steps 0", "--steps", extra=True)(R("--policy", "random", "--steps", "0"))
case("rollout", "--steps with --actions", "--steps", extra=True)(R("--actions", "0,1", "--steps", "3"))
case("rollout", "--actions with --policy", "--policy|--actions", extra=True)(R("--actions", "0,1", "--policy", "random"))
case("rollout", "--context-actions with a dataset context", "--context-actions", extra=True)(R("--context-actions", "0,1"))
case("rollout", "--context-actions wrong count", "--context-actions", extra=True)(
    lambda w, d: R("--context-images", *IMAGES(w), "--context-actions", "0")(w, d))
case("rollout", "--context-actions out of range", "--context-actions", extra=True)(
    lambda w, d: R("--context-images", *IMAGES(w), "--context-actions", "0,7")(w, d))
case("rollout", "--context-images and --episode", "--episode", extra=True)(
    lambda w, d: R("--context-images", *IMAGES(w), "--episode", "0")(w, d))
case("rollout", "--compare-real with context images", "--compare-real", extra=True)(
    lambda w, d: R("--context-images", *IMAGES(w), "--actions", "0,1", "--compare-real")(w, d))
case("rollout", "--upscale 0", "--upscale", extra=True)(R("--upscale", "0"))
case("rollout", "--upscale 100000", "--upscale")(R("--upscale", "100000"))
case("rollout", "--fps 0", "--fps")(R("--fps", "0"))
case("rollout", "negative --fps", "--fps", extra=True)(R("--fps=-5"))
case("rollout", "--fps nan", "--fps")(R("--fps", "nan"))
case("rollout", "--device without CUDA", "--device")(R("--device", "cuda:0", "--actions", "0,1"))
case("rollout", "--device bogus", "--device")(R("--device", "toaster", "--actions", "0,1"))
case("rollout", "--data of another env", "Acrobot")(lambda w, d: R("--data", str(w.acrobot))(w, d))
case("rollout", "--data of another frame size", "32", extra=True)(lambda w, d: R("--data", str(w.data32))(w, d))
case("rollout", "--model missing", "nope", extra=True)(R(model=lambda w, d: d / "nope"))
case("rollout", "action_spec n disagrees with the networks", "action", extra=True)(
    R("--actions", "0,2", model=info_with(lambda i: i["action_spec"].update(n=3))))

# ------------------------------------------------------------------------------------------------ plan
case("plan", "model trained on a 3-action env", "Acrobot")(P(model=info_with(lambda i: i["meta"].update(env_id="Acrobot-v1"))))
case("plan", "model records no env", "env_id")(P(model=info_with(lambda i: i["meta"].pop("env_id") and None)))
case("plan", "model names an unknown env", "Foo-v0", extra=True)(P(model=info_with(lambda i: i["meta"].update(env_id="Foo-v0"))))
case("plan", "--config missing", "nope.yaml")(P("--config", "nope.yaml"))
case("plan", "--config with an unknown plan key", "plan.cem.horizn", extra=True)(
    lambda w, d: P("--config", str(write(d / "exp.yaml", "plan: {cem: {horizn: 3}}\n")))(w, d))
case("plan", "model names a continuous-action env", "Pendulum", extra=True)(
    P(model=info_with(lambda i: i["meta"].update(env_id="Pendulum-v1"))))
case("plan", "model env_id not a string", "env_id")(P(model=info_with(lambda i: i["meta"].update(env_id=42))))
case("plan", "unknown planner", "greedy", extra=True)(P("--planner", "greedy"))
case("plan", "--episodes 0", "--episodes")(P("--episodes", "0"))
case("plan", "--max-episode-steps 0", "--max-episode-steps", extra=True)(P("--max-episode-steps", "0"))
case("plan", "--horizon 0", "--horizon")(P("--horizon", "0"))
case("plan", "--population 0", "--population", extra=True)(P("--population", "0"))
case("plan", "--iterations 0", "--iterations", extra=True)(P("--iterations", "0"))
case("plan", "--uncertainty-samples 0", "--uncertainty-samples", extra=True)(P("--uncertainty-samples", "0"))
case("plan", "negative --uncertainty-penalty", "--uncertainty-penalty", extra=True)(P("--uncertainty-penalty=-1"))
case("plan", "--uncertainty-penalty nan", "--uncertainty-penalty")(P("--uncertainty-penalty", "nan"))
case("plan", "--uncertainty-penalty inf", "--uncertainty-penalty")(P("--uncertainty-penalty", "inf"))
case("plan", "--sampler-steps 0", "--sampler-steps")(P("--sampler-steps", "0"))
case("plan", "negative --seed", "--seed", extra=True)(P("--seed=-1"))
case("plan", "--seed beyond 2**32", "--seed", extra=True)(P("--seed", "99999999999"))
case("plan", "unknown precision", "fp16", extra=True)(P("--precision", "fp16"))
case("plan", "--out under a file", "notes.txt")(lambda w, d: P("--out", str(file_under(w, d)))(w, d))
case("plan", "--out is a file", "notes.txt", keep=KEEP_FILE, extra=True)(lambda w, d: P("--out", str(w.file))(w, d))
case("plan", "--model with truncated denoiser weights", "denoiser")(
    P(model=model_with(lambda m: truncate(m / "denoiser" / "diffusion_pytorch_model.safetensors"))))

# ------------------------------------------------------------------------------------------------ demo
case("demo", "unknown key", "foo")(D("foo=1"))
case("demo", "vae_steps 0", "train.vae_steps", extra=True)(D("train.vae_steps=0"))
case("demo", "vae_steps text", "train.vae_steps", extra=True)(D("train.vae_steps=abc"))
case("demo", "--config missing", "nope.yaml", extra=True)(lambda w, d: ["demo", "--config", "nope.yaml"])
case("demo", "--config broken YAML", "line", extra=True)(lambda w, d: ["demo", "--config", str(write(d / "c.yaml", "train: [\n"))])
case("demo", "run_dir under a file", "notes.txt", extra=True)(lambda w, d: D(f"run_dir={file_under(w, d)}")(w, d))
case("demo", "unknown env id", "Nope-v0")(D("collect.env.id=Nope-v0"))
case("demo", "collect.steps 0", "collect.steps")(D("collect.steps=0"))
case("demo", "collect frame_size 0", "collect.env.frame_size")(D("collect.env.frame_size=0"))
case("demo", "collect.env given a string", "collect.env", extra=True)(D("collect.env=CartPole-v1"))
case("demo", "plan.episodes 0", "plan.episodes", extra=True)(D("plan.episodes=0"))
case("demo", "plan.cem.horizon 0", "plan.cem.horizon", extra=True)(D("plan.cem.horizon=0"))
case("demo", "eval.horizon 0", "eval.horizon", extra=True)(D("eval.horizon=0"))
case("demo", "data.path holds another env's episodes", "Acrobot")(
    lambda w, d: D(f"data.path={copy(w.acrobot, d / 'acro')}", "collect.steps=10")(w, d))

# ------------------------------------------------------------------------------------------------ play
# (a wrongly accepted input starts the server: the case then times out; see --play-timeout)
case("play", "--model missing", "nope")(lambda w, d: ["play", "--model", str(d / "nope"), "--port", "0"])
case("play", "--port 70000", "--port")(lambda w, d: ["play", "--model", str(w.model), "--port", "70000"])
case("play", "--device bogus", "--device")(lambda w, d: ["play", "--model", str(w.model), "--port", "0", "--device", "toaster"])
case("play", "--data of another env", "Acrobot", extra=True)(
    lambda w, d: ["play", "--model", str(w.model), "--port", "0", "--data", str(w.acrobot)])
case("play", "--port negative", "--port", extra=True)(lambda w, d: ["play", "--model", str(w.model), "--port", "-1"])
case("play", "--model is a dataset", "world_model.json")(lambda w, d: ["play", "--model", str(w.data), "--port", "0"])
case("play", "--model with garbage weights", "safetensors", extra=True)(lambda w, d: [
    "play", "--model", str(model_with(lambda m: [garbage(f) for f in m.rglob("*.safetensors")])(w, d)),
    "--port", "0"])
case("play", "--data missing", "nope")(lambda w, d: ["play", "--model", str(w.model), "--port", "0", "--data",
                                                      str(d / "nope")])
case("play", "--threads 0", "--threads", extra=True)(lambda w, d: ["play", "--model", str(w.model), "--port", "0",
                                                                   "--threads", "0"])

# ----------------------------------------------------------------------------------------------- dream
DREAM = str(REPO / "configs" / "tiny" / "dream.yaml")


def DR(*extra: str, config: PathFn | None = None, run_dir: PathFn | None = None) -> Argv:
    """dream on the tiny config with a 120-step budget into the case folder (a wrongly accepted input still
    ends in about a minute), plus `extra`."""
    return lambda w, d: ["dream", at(config, w, d, Path(DREAM)), f"run_dir={at(run_dir, w, d, d / 'run')}",
                         "dream.real_steps=120", "dream.prefill_steps=60", "dream.collect_steps=60",
                         "dream.eval_every=120", "train.num_threads=1", "--no-progress", *extra]


case("dream", "config file missing", "nope.yaml")(DR(config=lambda w, d: d / "nope.yaml"))
case("dream", "broken YAML", "line", extra=True)(DR(config=text_file("dream: {real_steps: [4\n")))
case("dream", "unknown dream key", "real_stepz")(DR("dream.real_stepz=5"))
case("dream", "agent precision fp16", "agent.precision")(DR("agent.precision=fp16"))
case("dream", "real_steps 0", "dream.real_steps")(DR("dream.real_steps=0"))
case("dream", "eval_episodes negative", "dream.eval_episodes", extra=True)(DR("dream.eval_episodes=-1"))
case("dream", "acting policy unknown", "dream.acting")(DR("dream.acting=oracle"))
case("dream", "max_episode_steps 0", "dream.max_episode_steps", extra=True)(DR("dream.max_episode_steps=0"))
case("dream", "agent.horizon 0", "agent.horizon")(DR("agent.horizon=0"))
case("dream", "agent.discount 1.5", "agent.discount", extra=True)(DR("agent.discount=1.5"))
case("dream", "agent.lam text", "agent.lam", extra=True)(DR("agent.lam=high"))
case("dream", "kind that cannot learn online", "copy_last")(DR("model.kind=copy_last"))
case("dream", "continuous-action env", "discrete|Discrete")(DR("collect.env.id=Pendulum-v1"))
case("dream", "unknown env id", "Nope-v0", extra=True)(DR("collect.env.id=Nope-v0"))
case("dream", "frame_size 0", "collect.env.frame_size", extra=True)(DR("collect.env.frame_size=0"))
case("dream", "run_dir under a file", "notes.txt")(DR(run_dir=file_under))
case("dream", "run_dir holds a run, no --resume", "--resume")(DR(run_dir=run_copy))
case("dream", "--resume and --overwrite", "overwrite", extra=True)(DR("--resume", "--overwrite"))
case("dream", "planner acting with population 0", "plan.cem.population", extra=True)(
    DR("dream.acting=planner", "plan.cem.population=0"))

# ----------------------------------------------------------------------------------------------- rssm
RSSM = str(REPO / "configs" / "tiny" / "rssm.yaml")
case("train", "rssm: classes 0 is the preset's, -1 is not", "rssm.classes")(T("rssm.classes=-1", config=lambda w, d: Path(RSSM)))
case("train", "rssm: unknown preset", "rssm.preset")(T("rssm.preset=huge", config=lambda w, d: Path(RSSM)))
case("train", "rssm: unimix 1", "rssm.unimix", extra=True)(T("rssm.unimix=1", config=lambda w, d: Path(RSSM)))
case("train", "rssm: unknown key", "stochastic", extra=True)(T("rssm.stochastic=8", config=lambda w, d: Path(RSSM)))
case("train", "rssm: seq_len longer than every episode", "seq_len")(
    T("rssm.seq_len=5000", config=lambda w, d: Path(RSSM)))
case("train", "rssm: lr 0", "rssm.lr", extra=True)(T("rssm.lr=0", config=lambda w, d: Path(RSSM)))

# --------------------------------------------------------------------------------------------- compare
COMPARE = str(REPO / "configs" / "tiny" / "compare.yaml")


def CMP(*extra: str, config: PathFn | None = None, run_dir: PathFn | None = None) -> Argv:
    """compare on the tiny config's quick profile into the case folder, plus `extra` (the pairs' configs given
    as absolute paths: the case runs in its own folder)."""
    tiny = REPO / "configs" / "tiny" / "dream.yaml"
    pairs = f"pairs=[{{model: diffusion, consumer: actor_critic, config: {tiny}}}]"
    return lambda w, d: ["compare", at(config, w, d, Path(COMPARE)), f"run_dir={at(run_dir, w, d, d / 'run')}",
                         pairs, "--quick", "--no-progress", *extra]


case("compare", "config file missing", "nope.yaml")(CMP(config=lambda w, d: d / "nope.yaml"))
case("compare", "broken YAML", "line", extra=True)(CMP(config=text_file("pairs: [\n")))
case("compare", "unknown key", "pairz")(CMP("pairz=[]"))
case("compare", "no pairs", "pairs")(CMP("pairs=[]"))
case("compare", "unknown consumer", "consumer")(
    CMP("pairs=[{model: diffusion, consumer: oracle, config: configs/tiny/dream.yaml}]"))
case("compare", "pair config missing", "nope.yaml")(CMP(f"pairs=[{{model: diffusion, consumer: cem, config: nope.yaml}}]"))
case("compare", "pair config trains another kind", "model.kind")(
    CMP(f"pairs=[{{model: rssm, consumer: cem, config: {REPO / 'configs' / 'tiny' / 'dream.yaml'}}}]"))
case("compare", "pair runs another env", "Acrobot")(CMP("env_id=Acrobot-v1"))
case("compare", "duplicate seeds", "seeds", extra=True)(CMP("quick.seeds=[0,0]"))
case("compare", "report horizon past the horizon", "report_horizons", extra=True)(
    CMP("quick.fidelity.report_horizons=[1,99]"))
case("compare", "real_steps 0", "quick.real_steps")(CMP("quick.real_steps=0"))
case("compare", "run_dir under a file", "notes.txt")(CMP(run_dir=file_under))

# ---------------------------------------------------------------------------------------------- muzero
MUZERO = REPO / "configs" / "tiny" / "muzero.yaml"


def MZ(*extra: str) -> Argv:
    """dream on the tiny MuZero config into the case folder, plus `extra`."""
    return DR(*extra, config=lambda w, d: MUZERO)


case("dream", "muzero: search with 0 simulations", "muzero.search.num_simulations")(MZ("muzero.search.num_simulations=0"))
case("dream", "muzero: unknown observation", "muzero.network.observation")(MZ("muzero.network.observation=ram"))
case("dream", "muzero: unroll 0", "muzero.learn.unroll_steps", extra=True)(MZ("muzero.learn.unroll_steps=0"))
case("dream", "muzero: negative consistency weight", "muzero.learn.consistency_weight")(
    MZ("muzero.learn.consistency_weight=-1"))
case("dream", "muzero: kind muzero with the actor-critic", "dream.agent")(MZ("dream.agent=actor_critic"))
case("dream", "muzero: agent muzero on a diffusion model", "dream.agent")(DR("dream.agent=muzero"))
case("dream", "muzero: unknown agent", "dream.agent", extra=True)(MZ("dream.agent=ppo"))
