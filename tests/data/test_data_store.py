"""Episode store: round trip, validation errors, corrupt episodes, crash safety, external folders."""

from __future__ import annotations

import json
import os
import shutil

import gymnasium as gym
import numpy as np
import pytest

from vidworld.data import store as store_mod
from vidworld.data.store import DatasetError, EpisodeStore
from vidworld.data.video import VideoReadError, write_video


def _append(store, ep):
    return store.append(ep["frames"], ep["actions"], ep["rewards"], ep["terminated"], ep["truncated"],
                        state=ep["state"])


def _new_store(path, n_episodes, synthetic_episode, size=16):
    store = EpisodeStore.create(path, "Toy-v0", size, 15, gym.spaces.Discrete(3), meta={"why": "test"})
    eps = [synthetic_episode(5 + 3 * i, size=size, seed=i) for i in range(n_episodes)]
    for ep in eps:
        _append(store, ep)
    return store, eps


def test_round_trip_and_reopen(tmp_path, synthetic_episode):
    _, eps = _new_store(tmp_path / "ds", 3, synthetic_episode)
    again = EpisodeStore.open(tmp_path / "ds")
    assert (again.env_id, again.frame_size, again.fps, again.meta) == ("Toy-v0", 16, 15, {"why": "test"})
    assert again.action_space == gym.spaces.Discrete(3)
    assert [e.name for e in again.episodes] == ["ep_000000", "ep_000001", "ep_000002"]
    assert [e.length for e in again.episodes] == [5, 8, 11]
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["action_space"] == {"type": "discrete", "n": 3} and manifest["frame_size"] == 16
    for i, ep in enumerate(eps):
        assert again.episodes[i].episode_return == pytest.approx(float(ep["rewards"].sum()))
        loaded = again.load_episode(i)
        np.testing.assert_array_equal(loaded.frames, ep["frames"])
        for key in ("actions", "rewards", "terminated", "truncated", "state"):
            np.testing.assert_array_equal(getattr(loaded.arrays, key), ep[key])
        assert loaded.arrays.actions.dtype == np.int64


def test_box_actions_round_trip(tmp_path, synthetic_episode):
    space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    store = EpisodeStore.create(tmp_path / "ds", "Toy-v0", 16, 15, space)
    ep = synthetic_episode(6)
    actions = np.random.default_rng(0).uniform(-1, 1, (6, 2)).astype(np.float32)
    store.append(ep["frames"], actions, ep["rewards"], ep["terminated"], ep["truncated"])
    again = EpisodeStore.open(tmp_path / "ds")
    assert again.action_space == space
    np.testing.assert_array_equal(again.arrays(0).actions, actions)
    assert again.arrays(0).state is None


def test_append_validates_its_input(tmp_path, synthetic_episode):
    store, _ = _new_store(tmp_path / "ds", 0, synthetic_episode)
    ep = synthetic_episode(6)
    with pytest.raises(DatasetError, match=r"6 frames for 6 actions; expected N\+1 = 7"):
        store.append(ep["frames"][:6], ep["actions"], ep["rewards"], ep["terminated"], ep["truncated"])
    with pytest.raises(DatasetError, match=r"uint8 \[N\+1, 16, 16, 3\].*frame_size 16.*\(7, 8, 8, 3\)"):
        store.append(ep["frames"][:, :8, :8], ep["actions"], ep["rewards"], ep["terminated"], ep["truncated"])
    with pytest.raises(DatasetError, match=r"append: action 3 \(step 3; actions span 0\.\.5\) is outside the action space in .*manifest.json expects integers in \[0, 3\) \(discrete n=3\)"):
        store.append(ep["frames"], np.arange(6), ep["rewards"], ep["terminated"], ep["truncated"])
    with pytest.raises(DatasetError, match=r"rewards has shape \(5,\), expected \(6,\)"):
        store.append(ep["frames"], ep["actions"], ep["rewards"][:5], ep["terminated"], ep["truncated"])
    assert store.episodes == [] and os.listdir(tmp_path / "ds" / "episodes") == []


def test_not_a_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder does not exist"):
        EpisodeStore.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"not a dataset: no manifest.json and no \*.mp4"):
        EpisodeStore.open(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{}")
    with pytest.raises(DatasetError, match="not a vidworld episode manifest"):
        EpisodeStore.open(tmp_path / "bad")


def test_corrupt_episode_raises_or_is_skipped(tmp_path, synthetic_episode):
    _new_store(tmp_path / "ds", 3, synthetic_episode)
    bad = tmp_path / "ds" / "episodes" / "ep_000001.mp4"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated
    with pytest.raises(DatasetError, match=r"invalid episode ep_000001 .*ep_000001.mp4"):
        EpisodeStore.open(tmp_path / "ds")
    with pytest.warns(UserWarning, match=r"skipped 1 invalid episode.*ep_000001"):
        store = EpisodeStore.open(tmp_path / "ds", skip_corrupt=True)
    assert [e.name for e in store.episodes] == ["ep_000000", "ep_000002"]
    assert [s.name for s in store.skipped] == ["ep_000001"]
    # Appending keeps the skipped episode's manifest entry and continues the numbering.
    info = _append(store, synthetic_episode(4, seed=9))
    assert info.name == "ep_000003"
    names = [e["name"] for e in json.loads((tmp_path / "ds" / "manifest.json").read_text())["episodes"]]
    assert names == ["ep_000000", "ep_000001", "ep_000002", "ep_000003"]


def test_silently_misdecoded_video_is_caught_by_frame_sums(tmp_path, synthetic_episode):
    store, eps = _new_store(tmp_path / "ds", 1, synthetic_episode)
    # Replace the video by a readable one with the right shape but different pixels.
    write_video(store.video_path(0), np.clip(eps[0]["frames"].astype(int) + 1, 0, 255).astype(np.uint8))
    with pytest.raises(VideoReadError, match=r"ep_000000.mp4: frame 0 decodes differently"):
        EpisodeStore.open(tmp_path / "ds").load_episode(0)


def test_wrong_frame_size_names_file_and_expected_size(tmp_path, synthetic_episode):
    _new_store(tmp_path / "ds", 1, synthetic_episode)
    path = tmp_path / "ds" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["frame_size"] = 32
    path.write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"ep_000000.mp4 has 16x16 frames; the dataset's frame size is 32x32"):
        EpisodeStore.open(tmp_path / "ds")


def test_crash_between_files_leaves_a_valid_store(tmp_path, synthetic_episode, monkeypatch):
    store, _ = _new_store(tmp_path / "ds", 2, synthetic_episode)

    def boom(path, arrays):
        raise OSError("disk full")

    monkeypatch.setattr(store_mod, "save_npz", boom)
    with pytest.raises(OSError, match="disk full"):
        _append(store, synthetic_episode(5, seed=5))  # its mp4 is written, its npz is not
    monkeypatch.undo()
    # The failed append removed its mp4 (no orphan for a later repair) but keeps its number used up.
    assert "ep_000002.mp4" not in os.listdir(tmp_path / "ds" / "episodes")
    assert json.loads((tmp_path / "ds" / "manifest.json").read_text())["next_episode"] == 3
    again = EpisodeStore.open(tmp_path / "ds")
    assert len(again) == 2
    info = _append(again, synthetic_episode(5, seed=6))
    assert info.name == "ep_000003"  # the orphan ep_000002.mp4 is never reused
    assert len(EpisodeStore.open(tmp_path / "ds")) == 3


def test_open_or_create_refuses_a_different_dataset(tmp_path, synthetic_episode):
    _new_store(tmp_path / "ds", 1, synthetic_episode)
    same = EpisodeStore.open_or_create(tmp_path / "ds", "Toy-v0", 16, 15, gym.spaces.Discrete(3))
    assert len(same) == 1
    with pytest.raises(DatasetError, match=r"holds env_id=Toy-v0 frames \(16, 16\).*cannot append"):
        EpisodeStore.open_or_create(tmp_path / "ds", "Toy-v0", 32, 15, gym.spaces.Discrete(3))
    with pytest.raises(DatasetError, match="already holds a dataset"):
        EpisodeStore.create(tmp_path / "ds", "Toy-v0", 16, 15, gym.spaces.Discrete(3))


def test_external_folder(tmp_path, synthetic_episode):
    ext = tmp_path / "ext"
    a, b, c = (synthetic_episode(n, size=16, seed=s, n_actions=5) for n, s in [(6, 0), (7, 1), (4, 2)])
    write_video(ext / "a.mp4", a["frames"])  # native: N+1 frames, npz with rewards/terminated
    np.savez(ext / "a.npz", actions=a["actions"], rewards=a["rewards"], terminated=a["terminated"])
    write_video(ext / "b.mp4", b["frames"][:-1])  # N frames: the last action is dropped
    np.save(ext / "b.npy", b["actions"])
    write_video(ext / "c.mp4", c["frames"])
    np.save(ext / "c.npy", c["actions"].astype(np.int32))
    store = EpisodeStore.open(ext)
    assert store.external and store.env_id is None and store.frame_shape == (16, 16)
    highest = max(int(x["actions"].max()) for x in (a, b, c))
    assert store.action_space == gym.spaces.Discrete(highest + 1)
    assert [e.name for e in store.episodes] == ["a", "b", "c"]
    assert [e.length for e in store.episodes] == [6, 6, 4]
    eb = store.load_episode(1)
    np.testing.assert_array_equal(eb.frames, b["frames"][:-1])
    np.testing.assert_array_equal(eb.arrays.actions, b["actions"][:-1])
    assert eb.arrays.truncated.tolist() == [False] * 5 + [True]  # unknown ending: truncated, not terminal
    np.testing.assert_array_equal(store.arrays(0).terminated, a["terminated"])
    with pytest.raises(DatasetError, match="read-only"):
        _append(store, a)


def test_external_folder_errors(tmp_path, synthetic_episode):
    ext = tmp_path / "ext"
    ep = synthetic_episode(6)
    write_video(ext / "a.mp4", ep["frames"])
    with pytest.raises(DatasetError, match=r"a.mp4 has no actions: expected a.npz or a.npy"):
        EpisodeStore.open(ext)
    np.save(ext / "a.npy", ep["actions"][:3])
    with pytest.raises(DatasetError, match=r"a.mp4 has 7 frames for 3 actions; expected N\+1 = 4"):
        EpisodeStore.open(ext)
    shutil.copy(ext / "a.mp4", ext / "b.mp4")
    np.save(ext / "b.npy", ep["actions"])
    with pytest.warns(UserWarning, match="skipped 1 invalid episode"):
        store = EpisodeStore.open(ext, skip_corrupt=True)
    assert [e.name for e in store.episodes] == ["b"]
