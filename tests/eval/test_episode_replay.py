"""Episode replay for ALE and MiniGrid: the `episode_start` snapshot kept at collection reproduces a collected
episode's frames exactly (ALE with sticky actions on), and makes controllability computable on ALE datasets;
datasets collected before the snapshot existed still evaluate, with controllability null and a reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidworld.data.collect import CollectConfig, collect
from vidworld.data.dataset import SegmentDataset
from vidworld.data.store import EpisodeStore
from vidworld.envs.pixels import PixelEnvConfig
from vidworld.eval.config import EvalConfig
from vidworld.eval.episode_replay import BranchPoint, EpisodeReplay, ReplayMismatch
from vidworld.eval.run import ControllabilityUnavailable, _controllability, evaluate_world_model
from vidworld.protocol import ActionSpec
from vidworld.world_models.copy_last import CopyLastFrameModel

pytest.importorskip("ale_py", reason="ALE tests need ale-py (bundles the ROMs)")

BREAKOUT = "ALE/Breakout-v5"


def _collect(tmp_path, env: PixelEnvConfig, steps: int, name: str) -> EpisodeStore:
    collect(CollectConfig(env=env, steps=steps, out=str(tmp_path / name), seed=3), progress=False)
    return EpisodeStore.open(tmp_path / name)


def _frames(store: EpisodeStore, i: int) -> torch.Tensor:
    return torch.from_numpy(store.load_episode(i).frames).permute(0, 3, 1, 2)  # [N+1, 3, S, S]


@pytest.mark.parametrize("env", [PixelEnvConfig(BREAKOUT, frame_size=64),  # sticky actions 0.25 (v5 default)
                                 PixelEnvConfig("MiniGrid-Empty-5x5-v0", frame_size=40)])
def test_replay_reproduces_a_collected_episode_exactly(tmp_path, env):
    store = _collect(tmp_path, env, steps=20, name="d")
    arrays = store.arrays(0)
    assert arrays.episode_start is not None and arrays.episode_start.dtype == np.uint8
    frames, actions = _frames(store, 0), torch.from_numpy(arrays.actions).long()
    n = len(actions)
    replay = EpisodeReplay(env)
    try:
        for branch in (0, 7):  # from the reset itself, and from the middle of the episode
            point = BranchPoint(arrays.episode_start, arrays.actions[:branch], frames[branch], "ep0")
            replayed = replay([point], actions[None, branch:])
            assert torch.equal(replayed[0], frames[branch + 1 : n + 1])
        # other actions from the same frame: another real future (not the recorded one)
        point = BranchPoint(arrays.episode_start, arrays.actions[:7], frames[7], "ep0")
        other = replay([point], (actions[None, 7:] + 1) % replay.num_actions)
        assert other.shape == (1, n - 7, 3, env.frame_size, env.frame_size)
        assert not torch.equal(other[0], frames[8 : n + 1])
        # a prefix that is not the recorded one does not reach the recorded frame: refused, not silently wrong
        wrong = BranchPoint(arrays.episode_start, (arrays.actions[:7] + 1) % replay.num_actions, frames[7], "ep0")
        with pytest.raises(ReplayMismatch, match="episode ep0: frame 7 differs from the recorded one"):
            replay([wrong], actions[None, 7:8])
    finally:
        replay.close()


def test_ale_replay_does_not_depend_on_what_the_env_did_before(tmp_path):
    """Sticky actions repeat the PREVIOUS action, which the emulator snapshot does not hold: a replay must start
    every episode as the collector's reset did (previous action NOOP), whatever the replaying env took last."""
    env = PixelEnvConfig(BREAKOUT, frame_size=32, max_episode_steps=12)
    store = _collect(tmp_path, env, steps=96, name="ale8")  # 8 episodes of 12 steps
    replay = EpisodeReplay(env)
    try:
        for i in range(len(store)):
            arrays, frames = store.arrays(i), _frames(store, i)
            for prime in range(replay.num_actions):  # the env last took each action in turn
                replay.env.unwrapped.step(prime)
                point = BranchPoint(arrays.episode_start, arrays.actions[:0], frames[0], f"ep{i}")
                replayed = replay([point], torch.from_numpy(arrays.actions[None]).long())
                assert torch.equal(replayed[0], frames[1:]), f"episode {i} after action {prime}"
    finally:
        replay.close()


def test_snapshot_of_another_env_kind_is_refused(tmp_path):
    store = _collect(tmp_path, PixelEnvConfig("MiniGrid-Empty-5x5-v0", frame_size=40), steps=5, name="mg")
    replay = EpisodeReplay(PixelEnvConfig(BREAKOUT, frame_size=32))
    try:
        with pytest.raises(ValueError, match="snapshot of kind 'np-random-v1' cannot restore ALE/Breakout-v5"):
            replay([BranchPoint(store.arrays(0).episode_start, np.zeros(0, np.int64),
                                torch.zeros(3, 32, 32, dtype=torch.uint8))], torch.zeros(1, 1, dtype=torch.long))
    finally:
        replay.close()


def _copy_last(store: EpisodeStore, k: int) -> CopyLastFrameModel:
    return CopyLastFrameModel(ActionSpec(n=store.action_space.n), k, store.frame_size,
                              meta={"env_id": store.env_id})


def test_controllability_on_a_tiny_ale_dataset_and_old_datasets(tmp_path):
    env = PixelEnvConfig(BREAKOUT, frame_size=32, max_episode_steps=16)
    store = _collect(tmp_path, env, steps=48, name="ale")  # 3 episodes of 16 steps
    model = _copy_last(store, k=2)
    cfg = EvalConfig(horizon=3, max_clips=8, controllability_clips=4, batch_size=8, video_clips=1)
    report = evaluate_world_model(model, str(store.root), cfg, tmp_path / "eval", val_fraction=0.9,
                                  progress=False)
    ctrl = report.controllability
    assert ctrl is not None and report.controllability_unavailable is None and ctrl.n_clips == 4
    # copy-last ignores actions: exactly 0, while the two replayed real futures do differ
    assert ctrl.mean == 0.0 and all(np.isfinite(ctrl.matched_psnr))
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["controllability"]["n_clips"] == 4 and summary["controllability_unavailable"] is None
    moving = summary["moving_region"]
    assert set(moving["moving_psnr_db"]) == {"model", "copy_last", "vae_ceiling"}
    assert len(moving["n_frames"]) == 3 and summary["horizon"]["moving_n_valid"] == moving["n_frames"]

    # the same dataset as collected before episode_start existed: controllability null, and why
    for npz in (store.root / "episodes").glob("*.npz"):
        with np.load(npz) as z:
            kept = {k: z[k] for k in z.files if k != "episode_start"}
        np.savez(npz, **kept)
    clips = SegmentDataset(store.root, 2, 3, split="val", val_fraction=0.9)
    with pytest.raises(ControllabilityUnavailable, match="carry no episode_start snapshot.*collect again"):
        _controllability(model, clips, cfg, None, torch.Generator().manual_seed(0))
