"""Crash hygiene: what a `kill -9` during `vidworld collect` leaves is recovered or removed when the store is
next opened for appending; read-only opens warn; episode numbers are never reused."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings

import gymnasium as gym
import numpy as np
import pytest

from vidworld.data.dataset import SegmentDataset
from vidworld.data.recovery import find_leftovers
from vidworld.data.store import EpisodeStore
from vidworld.data.video import write_video


def _drop_last_entry(root) -> None:
    """The state of a kill after ep_N.mp4 and ep_N.npz were renamed into place, before the manifest."""
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["episodes"].pop()
    path.write_text(json.dumps(manifest))


def _open_for_append(root) -> EpisodeStore:
    return EpisodeStore.open_or_create(root, "Toy-v0", 16, 15, gym.spaces.Discrete(3))


def _files(root) -> list[str]:
    return sorted(p.name for p in (root / "episodes").iterdir()) + sorted(os.listdir(root))


def test_complete_orphan_is_recovered_when_opened_for_appending(make_store, synthetic_episode):
    store = make_store((5, 8, 11))
    root = store.root
    _drop_last_entry(root)
    before = _files(root)
    with pytest.warns(UserWarning, match=r"interrupted write left 1 episode\(s\) not listed in manifest.json "
                                         r"\(ep_000002\).*recovered .* next time .* opened for appending"):
        readonly = EpisodeStore.open(root)
    assert [e.name for e in readonly.episodes] == ["ep_000000", "ep_000001"] and _files(root) == before
    with pytest.warns(UserWarning, match=r"recovered 1 complete episode\(s\) \(ep_000002\)"):
        again = _open_for_append(root)
    assert again.repaired.recovered == ("ep_000002",) and again.repaired.removed == ()
    assert [e.name for e in again.episodes] == ["ep_000000", "ep_000001", "ep_000002"]
    assert again.episodes[2].length == 11
    np.testing.assert_array_equal(again.load_episode(2).frames, synthetic_episode(11, seed=2)["frames"])
    ep = synthetic_episode(4, seed=7)
    assert again.append(ep["frames"], ep["actions"], ep["rewards"], ep["terminated"], ep["truncated"]).name \
        == "ep_000003"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing left to warn about
        assert len(EpisodeStore.open(root)) == 4


def test_unverifiable_orphans_and_temps_are_removed(make_store, synthetic_episode):
    store = make_store((5, 8))
    eps = store.root / "episodes"
    (eps / "ep_000002.mp4").write_bytes((eps / "ep_000000.mp4").read_bytes())  # killed before its npz
    (eps / "ep_000003.mp4").write_bytes((eps / "ep_000000.mp4").read_bytes())  # npz of another episode:
    (eps / "ep_000003.npz").write_bytes((eps / "ep_000001.npz").read_bytes())  # 6 frames for 8 actions
    # Right length, but the frames decode to other sums than the npz recorded: not provably intact.
    write_video(eps / "ep_000004.mp4", synthetic_episode(8, seed=1)["frames"] // 2)
    (eps / "ep_000004.npz").write_bytes((eps / "ep_000001.npz").read_bytes())
    (eps / ".ep_000005.tmp123-0123abcd.mp4").write_bytes(b"\x00" * 50)  # killed while encoding
    (store.root / ".manifest.tmp123-0123abcd.json").write_text("{")  # killed while writing the manifest
    with pytest.warns(UserWarning, match=r"3 episode\(s\) not listed .*\(ep_000002, ep_000003, ep_000004\) "
                                         r"and 2 temp"):
        EpisodeStore.open(store.root)
    with pytest.warns(UserWarning, match=r"removed 7 unverifiable or temp file\(s\)"):
        again = _open_for_append(store.root)
    assert again.repaired.recovered == ()
    assert sorted(p.name for p in again.repaired.removed) == [
        ".ep_000005.tmp123-0123abcd.mp4", ".manifest.tmp123-0123abcd.json", "ep_000002.mp4", "ep_000003.mp4",
        "ep_000003.npz", "ep_000004.mp4", "ep_000004.npz"]
    reasons = " | ".join(again.repaired.reasons)
    assert "ep_000002.npz is missing" in reasons and "6 frames for 8 actions" in reasons
    assert "ep_000004.mp4: frame 0 decodes differently" in reasons
    assert _files(store.root) == ["ep_000000.mp4", "ep_000000.npz", "ep_000001.mp4", "ep_000001.npz",
                                  "episodes", "manifest.json"]
    assert not find_leftovers(store.root, {"ep_000000", "ep_000001"})
    # Numbers 2..5 existed on disk (as orphans and a temp): never handed out again, also after a reopen.
    assert again.next_index() == 6
    assert json.loads((store.root / "manifest.json").read_text())["next_episode"] == 6
    assert EpisodeStore.open(store.root).next_index() == 6


def test_a_leftover_temps_number_is_never_reused(make_store, synthetic_episode):
    store = make_store((5, 8, 11))
    (store.root / "episodes" / ".ep_000003.tmp99-deadbeef.npz").write_bytes(b"PK")
    assert store.next_index() == 4
    with pytest.warns(UserWarning, match="temp file"):
        again = _open_for_append(store.root)
    assert not find_leftovers(store.root, set(again.listed_names))
    ep = synthetic_episode(4)
    assert again.append(ep["frames"], ep["actions"], ep["rewards"], ep["terminated"], ep["truncated"]).name \
        == "ep_000004"


def test_read_only_open_touches_nothing(make_store):
    store = make_store((5,))
    (store.root / "episodes" / "ep_000001.mp4").write_bytes(b"half")
    (store.root / "episodes" / ".ep_000002.tmp1-00000000.mp4").write_bytes(b"")
    before = _files(store.root)
    with pytest.warns(UserWarning, match="interrupted write"):
        assert len(SegmentDataset(store.root, split="all").store) == 1
    assert _files(store.root) == before


_COLLECT = """
import sys
from vidworld.data.collect import CollectConfig, collect
from vidworld.envs.pixels import PixelEnvConfig
env = PixelEnvConfig("CartPole-v1", frame_size=16, max_episode_steps=int(sys.argv[2]))
collect(CollectConfig(env=env, steps=10**6, out=sys.argv[1], seed=int(sys.argv[3])), progress=False)
"""


def test_collect_killed_at_random_moments_leaves_a_repairable_store(tmp_path):
    """Real `kill -9`s of a collecting process: each time the store opens, opening it to append leaves no
    orphan or temp, every listed episode decodes to its written frame sums, and no number is reused."""
    out = tmp_path / "cp"
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", OMP_NUM_THREADS="1")
    names_before: list[str] = []
    first = 0  # the number the next run's first episode gets
    for kill in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _COLLECT, str(out), str(rng.choice([3, 5, 9])), str(kill)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # Wait until this run has begun writing its first episode (a temp or file numbered `first`),
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and proc.poll() is None and not (
                    (out / "episodes").is_dir() and find_leftovers(out, set()).highest >= first):
                time.sleep(0.005)
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(rng.uniform(0.0, 0.5))  # then kill at a random moment: mid-step, -encode or -rename
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stderr.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a read-only open may warn about what the kill left
            EpisodeStore.open(out)
            store = EpisodeStore.open_or_create(out, "CartPole-v1", 16, 15, gym.spaces.Discrete(2))
        names = [e.name for e in store.episodes]
        assert not find_leftovers(out, set(names)), f"seed {seed}, kill {kill}"
        assert names[: len(names_before)] == names_before, f"seed {seed}: listed episodes changed"
        numbers = [int(n[3:]) for n in names]
        assert numbers == sorted(set(numbers)), f"seed {seed}: numbers not increasing/unique: {numbers}"
        for i in range(len(store)):
            store.load_episode(i)  # decodes and checks the frame sums written with it
        # Whatever number this run had on disk (listed, orphan or temp) is never handed out again.
        assert store.next_index() > first, f"seed {seed}, kill {kill}"
        names_before, first = names, store.next_index()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(EpisodeStore.open(out)) == len(names_before)
