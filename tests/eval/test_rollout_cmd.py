"""`vidworld rollout` end to end: a tiny model saved to disk, a tiny real 16x16 CartPole dataset with states."""

from __future__ import annotations

from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from tests.models.tiny import FRAME, K, tiny_world_on_disk
from vidworld.cli import main
from vidworld.data.store import EpisodeStore
from vidworld.data.video import read_video
from vidworld.eval.rollout import episode_context, real_frames

UPSCALE = 16  # the default for 16 px frames: at least 256 px on screen


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SimpleNamespace:
    """A 16x16 CartPole dataset (collected for real) and a tiny model saved with it as its dataset;
    `model` is the folder (what the command takes)."""
    w = tiny_world_on_disk(tmp_path_factory.mktemp("rollout"))
    return SimpleNamespace(root=w.root, data=w.data, model=str(w.model_dir))


def _rollout(world, *args: str) -> int:
    return main(["rollout", "--model", world.model, *args])


def test_real_actions_with_ground_truth_on_the_left(world, tmp_path, capsys):
    out = tmp_path / "r.mp4"
    assert _rollout(world, "--episode", "0", "--start", "1", "--steps", "6", "--compare-real", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "imagined return:" in printed and "real return over the same 6 steps" in printed
    video = read_video(out)
    side = FRAME * UPSCALE
    assert video.shape[0] == K + 6 and video.shape[1] == side and video.shape[2] > 2 * side
    # Left panel = the episode's real frames 1 .. 1+K+5 (lossy mp4: compare loosely, against the right panel).
    real = EpisodeStore.open(world.data).load_episode(0).frames[1 : 1 + K + 6]
    left = video[:, :side:UPSCALE, :side:UPSCALE].astype(float)
    right = video[:, :side:UPSCALE, -side::UPSCALE].astype(float)
    assert np.abs(left - real).mean() < 8
    assert np.abs(right[:K] - real[:K]).mean() < 8  # the same context on both sides
    assert np.abs(right[K:] - real[K:]).mean() > np.abs(left[K:] - real[K:]).mean() + 5  # an untrained model


def test_own_actions_replay_the_real_env_from_the_recorded_state(world):
    store = EpisodeStore.open(world.data)
    ctx = episode_context(store, 0, 2, K, FRAME)
    actions = ctx.future_actions[:5].numpy()
    # Replaying the episode's own actions from its recorded state reproduces its recorded frames exactly.
    replayed = real_frames(ctx, actions, own=False, frame_size=FRAME)
    assert torch.equal(replayed, ctx.future_frames[:5])
    mirrored = real_frames(ctx, 1 - actions, own=False, frame_size=FRAME)
    assert not torch.equal(mirrored, replayed)


def test_own_actions_and_random_policy_write_videos_of_the_right_length(world, tmp_path):
    out = tmp_path / "own.mp4"
    assert _rollout(world, "--actions", "0,1,1,0", "--compare-real", "--out", str(out)) == 0
    assert read_video(out).shape[0] == K + 4
    np.save(tmp_path / "a.npy", np.array([1, 0, 1]))
    assert _rollout(world, "--actions-file", str(tmp_path / "a.npy"), "--out", str(tmp_path / "f.mp4")) == 0
    assert read_video(tmp_path / "f.mp4").shape == (K + 3, FRAME * UPSCALE, FRAME * UPSCALE, 3)
    gif = tmp_path / "p.gif"
    assert _rollout(world, "--policy", "random", "--steps", "5", "--seed", "1", "--out", str(gif)) == 0
    assert iio.imread(gif).shape[1:] == (FRAME * UPSCALE, FRAME * UPSCALE, 3)


def test_context_images(world, tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(K):
        paths.append(str(tmp_path / f"c{i}.png"))
        iio.imwrite(paths[-1], rng.integers(0, 256, (FRAME, FRAME, 3), dtype=np.uint8))
    out = tmp_path / "img.mp4"
    assert _rollout(world, "--context-images", *paths, "--context-actions", "1,0", "--actions", "1 0",
                    "--out", str(out)) == 0
    assert read_video(out).shape[0] == K + 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--actions", "0,1,2"], "action 2 at position 2 is out of range"),
        (["--actions", "0,x"], "'x' (position 1) is not an integer"),
        (["--episode", "99"], "--episode 99 out of range"),
        (["--start", "99"], "--start 99 out of range"),
        (["--context-images", "BIG", "BIG", "BIG", "--actions", "1"], "resize it to 16x16"),
        (["--context-images", "OK", "--actions", "1"], "exactly K=3 images"),
        (["--context-images", "OK", "OK", "OK"], "no actions"),
        (["--context-images", "OK", "OK", "OK", "--actions", "1", "--compare-real"], "needs a dataset episode"),
        (["--actions", "1", "--steps", "3"], "--steps applies to"),
    ],
)
def test_bad_input_exits_with_a_clear_error(world, tmp_path, capsys, args, message):
    iio.imwrite(tmp_path / "big.png", np.zeros((FRAME + 4, FRAME, 3), np.uint8))
    iio.imwrite(tmp_path / "ok.png", np.zeros((FRAME, FRAME, 3), np.uint8))
    args = [str(tmp_path / "big.png") if a == "BIG" else str(tmp_path / "ok.png") if a == "OK" else a for a in args]
    out = tmp_path / "x.mp4"
    assert _rollout(world, *args, "--out", str(out)) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_missing_model_folder_and_bad_output_suffix(world, tmp_path, capsys):
    assert main(["rollout", "--model", str(tmp_path / "nope"), "--actions", "1", "--out", str(tmp_path / "a.mp4")]) == 2
    assert "world model folder not found" in capsys.readouterr().err
    assert _rollout(world, "--actions", "1", "--out", str(tmp_path / "a.avi")) == 2
    assert "--out must end in .mp4 or .gif" in capsys.readouterr().err
