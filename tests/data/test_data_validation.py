"""A user-supplied dataset folder never crashes with a raw traceback: every bad manifest or episode file
raises a one-line DatasetError (a ValueError) naming the file and what was expected, when the store opens."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from tests.data.damage import edit_manifest, edit_npz
from vidworld.data.dataset import SegmentDataset
from vidworld.data.errors import DatasetError
from vidworld.data.store import EpisodeStore
from vidworld.data.video import write_video


def _raises_one_line(path, match: str, **kwargs) -> DatasetError:
    with pytest.raises(DatasetError, match=match) as info:
        EpisodeStore.open(path, **kwargs)
    assert "\n" not in str(info.value) and isinstance(info.value, ValueError)
    return info.value


# ---------------------------------------------------------------- actions vs the manifest's action space
def test_action_outside_the_space_raises_at_open_naming_file_value_and_range(make_store):
    store = make_store((5, 8), n_actions=2)
    npz = store.root / "episodes" / "ep_000001.npz"
    edit_npz(npz, actions=np.array([0, 1, 5, 1, 0, 0, 1, 0]))
    match = r"ep_000001\.npz: action 5 \(step 2.*outside the action space in .*manifest\.json expects integers in \[0, 2\)"
    _raises_one_line(store.root, match)
    # Not a damaged file to skip quietly: the dataset (skip_corrupt=True by default) raises too, before
    # any training could feed the action to an embedding (an IndexError deep inside torch).
    with pytest.raises(DatasetError, match=match):
        SegmentDataset(store.root, split="all")
    edit_npz(npz, actions=np.array([0, 1, -1, 1, 0, 0, 1, 0]))
    _raises_one_line(store.root, r"ep_000001\.npz: action -1 ")


def test_manifest_action_space_too_small_names_manifest_and_file(make_store):
    store = make_store((5,), n_actions=2)
    assert 1 in store.arrays(0).actions
    edit_manifest(store.root, action_space={"type": "discrete", "n": 1})
    _raises_one_line(store.root, r"ep_000000\.npz: action 1 .*outside the action space in .*ds/manifest\.json "
                                 r"expects integers in \[0, 1\) \(discrete n=1\)")


def test_discrete_dataset_with_float_or_2d_actions(make_store):
    store = make_store((5,))
    npz = store.root / "episodes" / "ep_000000.npz"
    edit_npz(npz, actions=np.zeros(5, np.float32))
    _raises_one_line(store.root, r"ep_000000\.npz: actions are float32 \[5\]; .*expects integers in \[0, 3\)")
    edit_npz(npz, actions=np.zeros((5, 2), np.int64))
    _raises_one_line(store.root, r"ep_000000\.npz: actions are int64 \[5, 2\]")


def test_box_dataset_with_wrong_action_shape_or_nan(tmp_path, synthetic_episode):
    store = EpisodeStore.create(tmp_path / "box", "Toy-v0", 16, 15, gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
    ep = synthetic_episode(4)
    store.append(ep["frames"], np.zeros((4, 2), np.float32), ep["rewards"], ep["terminated"], ep["truncated"])
    npz = store.root / "episodes" / "ep_000000.npz"
    edit_npz(npz, actions=np.zeros((4, 3), np.float32))
    _raises_one_line(store.root, r"ep_000000\.npz: actions are float32 \[4, 3\]; .*finite floats \[N, 2\]")
    edit_npz(npz, actions=np.full((4, 2), np.nan, np.float32))
    _raises_one_line(store.root, r"ep_000000\.npz: actions contain NaN")


# ---------------------------------------------------------------- manifest.json
@pytest.mark.parametrize("text, match", [
    ("{not json", r"manifest\.json is not valid JSON .*expected the manifest of an episode store"),
    ("[1, 2]", r"manifest\.json is not a vidworld episode manifest \(expected a JSON object"),
    ('{"format": "vidworld.episodes", "version": 1}',
     r"manifest\.json lacks keys \['env_id', 'frame_size', 'fps', 'action_space', 'episodes'\]; expected"),
])
def test_manifest_not_json_or_not_a_manifest(make_store, text, match):
    store = make_store((3,))
    (store.root / "manifest.json").write_text(text)
    _raises_one_line(store.root, match)


@pytest.mark.parametrize("changes, match", [
    ({"frame_size": "64"}, r"frame_size is '64'; expected a positive integer"),
    ({"frame_size": None}, r"frame_size is None; expected a positive integer"),
    ({"fps": 0}, r"fps is 0; expected a positive number"),
    ({"episodes": 5}, r"episodes is 5; expected a list of episode entries"),
    ({"meta": []}, r"meta is \[\]; expected an object"),
    ({"env_id": 3}, r"env_id is 3; expected a gymnasium id"),
    ({"action_space": {"type": "discrete", "n": 0}}, r"bad action_space .*\(n \(counts\) have to be positive.*\); expected \{\"type\""),
    ({"action_space": {"type": "discrete", "n": "2"}}, r"bad action_space .*n and start must be integers"),
    ({"action_space": "discrete"}, r": bad action_space 'discrete': expected \{\"type\": \"discrete\""),
    ({"action_space": {"type": "box", "shape": [2], "low": [0], "high": [1]}}, r"bad action_space"),
])
def test_manifest_with_wrong_types(make_store, changes, match):
    store = make_store((3,))
    edit_manifest(store.root, **changes)
    _raises_one_line(store.root, r"manifest\.json.*" + match)


@pytest.mark.parametrize("entry, match", [
    ("ep_000000", r"episode entry 0 is 'ep_000000'; expected \{\"name\""),
    ({"name": "ep_000000", "length": "3", "return": 1.0}, r"episode entry 0 is .*'length': '3'"),
    ({"name": "ep_000000", "length": 3}, r"episode entry 0 is .*; expected \{\"name\": \"ep_000000\", \"length\""),
    ({"name": "../../etc/x", "length": 3, "return": 1.0}, r"episode entry 0 is .*name: a file stem"),
])
def test_manifest_with_bad_episode_entries(make_store, entry, match):
    store = make_store((3,))
    edit_manifest(store.root, episodes=[entry])
    _raises_one_line(store.root, r"manifest\.json: " + match)


def test_manifest_listing_an_episode_twice(make_store):
    store = make_store((3,))
    entries = json.loads((store.root / "manifest.json").read_text())["episodes"]
    edit_manifest(store.root, episodes=entries * 2)
    _raises_one_line(store.root, r"manifest\.json: episode 'ep_000000' is listed twice")


# ---------------------------------------------------------------- episode npz files
@pytest.mark.parametrize("content, match", [
    (b"garbage" * 20, r"ep_000000\.npz is not a readable \.npz \(.*\); expected a zip of named arrays"),
    (b"", r"ep_000000\.npz is not a readable \.npz"),
    (b"PK\x03\x04" + b"\x00" * 60, r"ep_000000\.npz is not a readable \.npz"),
])
def test_npz_that_is_not_a_zip(make_store, content, match):
    store = make_store((3,))
    (store.root / "episodes" / "ep_000000.npz").write_bytes(content)
    _raises_one_line(store.root, match)


def test_npz_holding_a_single_array(make_store):
    store = make_store((3,))
    with open(store.root / "episodes" / "ep_000000.npz", "wb") as f:
        np.save(f, np.arange(3))
    _raises_one_line(store.root, r"ep_000000\.npz holds a single array, not named arrays")


@pytest.mark.parametrize("key", ["actions", "rewards", "terminated", "truncated"])
def test_npz_missing_a_key(make_store, key):
    store = make_store((3,))
    edit_npz(store.root / "episodes" / "ep_000000.npz", drop=(key,))
    _raises_one_line(store.root, rf"ep_000000\.npz lacks \['{key}'\] \(has .*\); expected arrays "
                                 r"\['actions', 'rewards', 'terminated', 'truncated'\]")


@pytest.mark.parametrize("arrays, match", [
    ({"actions": np.array(2)}, r"'actions' is int64 \[\]; expected integers \[N\]"),
    ({"rewards": np.array(["a", "b", "c"])}, r"'rewards' is <U1 \[3\]; expected numbers \[N\]"),
    ({"rewards": np.array([0.0, np.nan, 1.0])}, r"'rewards' contain NaN or inf"),
    ({"terminated": np.array([0.5, 0.0, 1.0])}, r"'terminated' is float64 \[3\]; expected bool \[N\]"),
    ({"truncated": np.array([0, 2, 1])}, r"'truncated' holds values other than 0/1; expected bool \[N\]"),
    ({"frame_sums": np.zeros(4)}, r"'frame_sums' is float64 \[4\]; expected int64 \[N\+1\]"),
    ({"state": np.array([["x"]] * 4)}, r"'state' is <U1 \[4, 1\]; expected numbers \[N\+1, d\]"),
    ({"rewards": np.zeros(2, np.float32)}, r"rewards has shape \(2,\), expected \(3,\)"),
])
def test_npz_with_wrong_dtype_or_shape(make_store, arrays, match):
    store = make_store((3,))
    edit_npz(store.root / "episodes" / "ep_000000.npz", **arrays)
    _raises_one_line(store.root, r"ep_000000\.npz.*" + match)


def test_npz_with_an_episode_length_other_than_the_manifest(make_store):
    store = make_store((3,))
    npz = store.root / "episodes" / "ep_000000.npz"
    with np.load(npz) as z:
        d = {k: z[k][:2] for k in z.files}
    np.savez(npz, **d)
    _raises_one_line(store.root, r"ep_000000\.npz \(manifest length 3\): 4 frames for 2 actions")


def test_external_folder_with_bad_action_files(tmp_path, synthetic_episode):
    ext = tmp_path / "ext"
    ep = synthetic_episode(4)
    write_video(ext / "a.mp4", ep["frames"])
    (ext / "a.npz").write_bytes(b"not a zip at all")
    _raises_one_line(ext, r"invalid episode a in .*a\.npz is not a readable \.npz")
    np.savez(ext / "a.npz", actions=np.array(3))
    _raises_one_line(ext, r"a\.npz: 'actions' is int64 \[\]; expected integers \[N\] or floats")
    (ext / "a.npz").unlink()
    np.save(ext / "a.npy", np.array(["x"] * 4))
    _raises_one_line(ext, r"a\.npy: 'actions' is <U1 \[4\]")
