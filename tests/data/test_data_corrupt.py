"""One policy for corrupt videos: whether the header is bad (found at open) or the damage is mid-stream
(found while decoding: a decord error, or frames whose sums differ from what was written), the episode is
skipped with a warning naming the file and counted in `SegmentDataset.skipped_episodes`."""

from __future__ import annotations

import re
import warnings

import pytest

from vidworld.data.dataset import SegmentDataset
from vidworld.data.errors import DatasetError
from vidworld.data.video import write_video


def _damage_mid_stream(path, synthetic_episode, seed: int) -> None:
    """Same frame count and size, so the store opens it, but frames from 3 on differ from the frame sums."""
    frames = synthetic_episode(11, seed=seed)["frames"].copy()
    frames[3:] //= 2
    write_video(path, frames)


def test_mid_stream_corruption_is_skipped_and_counted(make_store, synthetic_episode):
    store = make_store((5, 8, 11))
    _damage_mid_stream(store.video_path(2), synthetic_episode, seed=2)
    ds = SegmentDataset(store.root, context_length=2, horizon=1, split="all")  # opens fine: header intact
    assert ds.skipped_episodes == [] and len(ds.episode_ids) == 3
    with pytest.warns(UserWarning, match=r"skipping episode ep_000002 .*ep_000002\.mp4: frame 3 decodes differently"):
        got = [e.name for e in ds.iter_episodes()]
    assert got == ["ep_000000", "ep_000001"]
    assert ds.skipped_episodes == ["ep_000002"] and "frame 3" in ds.skipped_reasons["ep_000002"]
    # Its windows are gone too: nothing later reads the damaged file.
    assert ds.episode_ids == [0, 1] and len(ds) == (5 + 2 - 3) + (8 + 2 - 3)
    assert {ds[i]["episode"] for i in range(len(ds))} == {0, 1}


def test_decoder_error_mid_stream_is_skipped(make_store):
    store = make_store((5, 40))
    path = store.video_path(1)
    data = bytearray(path.read_bytes())
    at = int(len(data) * 0.2)
    # Zeros inside the H.264 stream make decord raise DECORDError. Its decoder thread reads ahead, so the
    # error surfaces at open on some runs and while decoding on others: either way the episode is skipped.
    data[at : at + 200] = bytes(200)
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = SegmentDataset(store.root, split="all")
        assert [e.name for e in ds.iter_episodes()] == ["ep_000000"]
    assert ds.skipped_episodes == ["ep_000001"]
    assert re.search(r"cannot (read video|decode frames of) .*ep_000001\.mp4|ep_000001\.mp4: frame \d+ decodes",
                     ds.skipped_reasons["ep_000001"])
    assert any("ep_000001" in str(w.message) for w in caught)


def test_skip_corrupt_false_raises_naming_the_file(make_store, synthetic_episode):
    store = make_store((5, 8, 11))
    _damage_mid_stream(store.video_path(2), synthetic_episode, seed=2)
    ds = SegmentDataset(store.root, split="all", skip_corrupt=False)
    with pytest.raises(DatasetError, match=r"invalid episode ep_000002 .*ep_000002\.mp4: frame 3 decodes"):
        list(ds.iter_episodes())


def test_skipped_episodes_split_between_train_and_val_without_double_counting(make_store, synthetic_episode):
    store = make_store((5, 6, 7, 8, 9, 10))
    (store.root / "episodes" / "ep_000001.mp4").write_bytes(b"\x00" * 100)  # bad header: left out at open
    _damage_mid_stream(store.video_path(4), synthetic_episode, seed=4)  # found while decoding
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each open and decode warns; what counts is what gets recorded
        train = SegmentDataset(store.root, split="train", val_fraction=0.5)
        val = SegmentDataset(store.root, split="val", val_fraction=0.5)
        every = SegmentDataset(store.root, split="all")
        for ds in (train, val, every):
            list(ds.iter_episodes())
    assert sorted(train.skipped_episodes + val.skipped_episodes) == ["ep_000001", "ep_000004"]
    assert sorted(every.skipped_episodes) == ["ep_000001", "ep_000004"]
    assert "ep_000001.mp4" in every.skipped_reasons["ep_000001"]
    assert [every.store.episodes[i].name for i in every.episode_ids] == [
        "ep_000000", "ep_000002", "ep_000003", "ep_000005"]
