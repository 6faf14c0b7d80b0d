"""SegmentDataset: windows, item contents, split, DataLoader workers, external folders, fixture."""

from __future__ import annotations

import json
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vidworld.data.dataset import DatasetConfig, SegmentDataset, split_episodes
from vidworld.data.store import DatasetError, EpisodeStore
from vidworld.data.video import write_video


@pytest.fixture
def toy_store(tmp_path, synthetic_episode):
    """7 episodes of 2..14 transitions (3..15 frames), 16x16, 3 actions."""
    store = EpisodeStore.create(tmp_path / "ds", "Toy-v0", 16, 15, gym.spaces.Discrete(3))
    eps = []
    for i, n in enumerate([2, 4, 6, 8, 10, 12, 14]):
        ep = synthetic_episode(n, seed=i)
        store.append(ep["frames"], ep["actions"], ep["rewards"], ep["terminated"], ep["truncated"],
                     state=ep["state"])
        eps.append(ep)
    return store, eps


def test_windows_and_item_contents(toy_store):
    store, eps = toy_store
    ds = SegmentDataset(store, context_length=3, horizon=2, split="all")
    L = 5
    # Starts t with t + L <= N + 1: max(0, N + 2 - L) windows; the 3-frame episode gives none.
    assert len(ds) == sum(max(0, n + 2 - L) for n in [2, 4, 6, 8, 10, 12, 14])
    seen = set()
    for idx in range(len(ds)):
        item = ds[idx]
        ep, t = item["episode"], item["start"]
        seen.add((ep, t))
        src = eps[ep]
        assert item["frames"].shape == (L, 3, 16, 16) and item["frames"].dtype == torch.uint8
        assert torch.equal(item["frames"], torch.from_numpy(src["frames"][t : t + L]).permute(0, 3, 1, 2))
        assert item["actions"].dtype == torch.long and item["actions"].shape == (L - 1,)
        assert item["actions"].tolist() == src["actions"][t : t + L - 1].tolist()
        assert torch.equal(item["rewards"], torch.from_numpy(src["rewards"][t : t + L - 1]))
        assert item["terminated"].dtype == torch.bool
        assert item["terminated"].tolist() == src["terminated"][t : t + L - 1].tolist()
        assert item["truncated"].tolist() == src["truncated"][t : t + L - 1].tolist()
    assert len(seen) == len(ds)
    assert {t for e, t in seen if e == 1} == {0}  # 5 frames: exactly one window
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_split_by_episode_is_deterministic_and_stable(toy_store, synthetic_episode):
    store, _ = toy_store
    train = SegmentDataset(store, split="train", val_fraction=0.3, split_seed=1)
    val = SegmentDataset(store, split="val", val_fraction=0.3, split_seed=1)
    assert val.episode_ids and train.episode_ids
    assert sorted(train.episode_ids + val.episode_ids) == list(range(len(store)))
    assert val.episode_ids == SegmentDataset(store, split="val", val_fraction=0.3, split_seed=1).episode_ids
    assert {item["episode"] for item in (val[i] for i in range(len(val)))} <= set(val.episode_ids)
    # Growing the store never moves an old episode across the split.
    for seed in range(10, 20):
        ep = synthetic_episode(5, seed=seed)
        store.append(ep["frames"], ep["actions"], ep["rewards"], ep["terminated"], ep["truncated"])
    grown_val = SegmentDataset(store, split="val", val_fraction=0.3, split_seed=1).episode_ids
    assert [i for i in grown_val if i < 7] == val.episode_ids
    # Tiny datasets still get one val and one train episode.
    assert split_episodes(["a", "b"], 0.01, 0).tolist().count(True) == 1
    assert split_episodes(["a", "b"], 0.99, 0).tolist().count(True) == 1
    assert not split_episodes(["a"], 0.5, 0).any()


def test_dataloader_workers_give_the_same_batches(toy_store):
    store, _ = toy_store
    ds = SegmentDataset(store.root, context_length=2, horizon=1, split="all")
    ds[0]  # open a reader in the parent: workers must not reuse it
    pickle.loads(pickle.dumps(ds))[0]  # picklable with open readers (spawn-style workers)

    def batches(workers):
        loader = DataLoader(ds, batch_size=8, shuffle=False, num_workers=workers)
        return list(loader)

    serial, parallel = batches(0), batches(2)
    assert len(serial) == len(parallel) == -(-len(ds) // 8)
    for a, b in zip(serial, parallel):
        assert a["frames"].shape[1:] == (3, 3, 16, 16)
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_episode_frames_and_iter_episodes(toy_store):
    store, eps = toy_store
    ds = SegmentDataset(store, split="train", val_fraction=0.3)
    first = ds.episode_ids[0]
    frames = ds.episode_frames(first)
    np.testing.assert_array_equal(frames, eps[first]["frames"])
    assert ds.episode_frames(first) is frames  # cached
    got = list(ds.iter_episodes())
    assert [e.name for e in got] == [store.episodes[i].name for i in ds.episode_ids]
    for e, i in zip(got, ds.episode_ids):
        np.testing.assert_array_equal(e.frames, eps[i]["frames"])
        np.testing.assert_array_equal(e.arrays.actions, eps[i]["actions"])


def test_corrupt_and_wrong_size_episodes(toy_store):
    store, _ = toy_store
    (store.root / "episodes" / "ep_000003.mp4").write_bytes(b"\x00" * 100)
    with pytest.warns(UserWarning, match="ep_000003"):
        ds = SegmentDataset(store.root, split="all")  # skip_corrupt=True by default
    assert "ep_000003" not in [e.name for e in ds.store.episodes] and len(ds.store) == 6
    assert [s.name for s in ds.store.skipped] == ["ep_000003"]
    with pytest.raises(DatasetError, match="ep_000003"):
        SegmentDataset(store.root, split="all", skip_corrupt=False)
    manifest = json.loads((store.root / "manifest.json").read_text())
    manifest["frame_size"] = 64
    (store.root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"ep_000000.mp4 has 16x16 frames; the dataset's frame size is 64x64"):
        SegmentDataset(store.root, skip_corrupt=False)


def test_external_folder_through_the_dataset(tmp_path, synthetic_episode):
    for i, n in enumerate([6, 9]):
        ep = synthetic_episode(n, size=16, seed=i)
        write_video(tmp_path / f"clip{i}.mp4", ep["frames"])
        np.savez(tmp_path / f"clip{i}.npz", actions=ep["actions"])
    ds = SegmentDataset(tmp_path, context_length=4, horizon=1, split="all")
    assert len(ds) == (6 + 2 - 5) + (9 + 2 - 5)
    item = ds[0]
    assert item["frames"].shape == (5, 3, 16, 16) and item["actions"].shape == (4,)


def test_fixture_dataset_loads(cartpole_fixture):
    cfg = DatasetConfig(path=str(cartpole_fixture))
    train = SegmentDataset.from_config(cfg, 4, 1, split="train")
    val = SegmentDataset.from_config(cfg, 4, 1, split="val")
    assert train.store.env_id == "CartPole-v1" and train.store.frame_size == 64
    assert train.store.action_space == gym.spaces.Discrete(2)
    assert len(train) > 0 and len(val) > 0
    item = train[len(train) - 1]
    assert item["frames"].shape == (5, 3, 64, 64)
    assert train.store.arrays(0).state.shape[1] == 4
