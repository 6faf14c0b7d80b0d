"""vidworld.paths: argument paths checked before any long work, one-line errors naming the argument."""

from __future__ import annotations

import os

import pytest

from vidworld import paths
from vidworld.paths import check_input_dir, check_input_file, check_output_dir


@pytest.fixture
def a_file(tmp_path):
    f = tmp_path / "results.txt"
    f.write_text("not a folder")
    return f


def test_output_dir_that_exists_or_can_be_created_passes_and_nothing_is_created(tmp_path):
    assert check_output_dir(tmp_path, "--out") == tmp_path
    target = tmp_path / "new" / "deeper" / "plan"
    assert check_output_dir(str(target), "--out") == target
    assert not (tmp_path / "new").exists()  # a check only looks


def test_output_dir_under_a_regular_file_names_the_argument_and_the_file(a_file):
    # the `vidworld plan --out results.txt/plan` case that failed only after minutes of episodes
    with pytest.raises(ValueError) as info:
        check_output_dir(a_file / "plan" / "deeper", "--out")
    msg = str(info.value)
    target = a_file / "plan" / "deeper"
    assert msg == f"--out: cannot create folder {target}: {a_file} is a file, not a folder"
    with pytest.raises(ValueError, match=r"^run_dir: .*results\.txt is a file, not a folder; expected a"):
        check_output_dir(a_file, "run_dir")


def test_output_dir_that_is_not_writable_or_a_broken_link(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    # tests may run as root, where chmod does not deny anything: fake the permission answer instead
    real_access = os.access
    monkeypatch.setattr(paths.os, "access", lambda p, mode: str(p) != str(locked) and real_access(p, mode))
    with pytest.raises(ValueError, match=r"^--out: folder .*locked is not writable"):
        check_output_dir(locked, "--out")
    with pytest.raises(ValueError) as info:
        check_output_dir(locked / "a" / "b", "--out")
    target = locked / "a" / "b"
    assert str(info.value) == f"--out: cannot create folder {target}: no write permission in {locked}"
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(ValueError, match=r"^--out: .*link is a broken symbolic link"):
        check_output_dir(link, "--out")
    with pytest.raises(ValueError, match=r"^--out: empty path$"):
        check_output_dir("", "--out")


def test_input_file(tmp_path, a_file):
    assert check_input_file(a_file, "--actions-file") == a_file
    with pytest.raises(FileNotFoundError, match=r"^--actions-file: file not found: .*missing\.npy$"):
        check_input_file(tmp_path / "missing.npy", "--actions-file")
    with pytest.raises(FileNotFoundError) as info:
        check_input_file(a_file / "x.npy", "--actions-file")
    expected = f"--actions-file: file not found: {a_file / 'x.npy'} ({a_file} is a file, not a folder)"
    assert str(info.value) == expected
    with pytest.raises(ValueError, match=r"^config: .* is a folder; expected a file$"):
        check_input_file(tmp_path, "config")


def test_input_dir(tmp_path, a_file):
    assert check_input_dir(tmp_path, "--model") == tmp_path
    with pytest.raises(FileNotFoundError, match=r"^--model: folder not found: .*runs/model$"):
        check_input_dir(tmp_path / "runs" / "model", "--model")
    with pytest.raises(ValueError, match=r"^--data: .*results\.txt is a file, not a folder; expected a"):
        check_input_dir(a_file, "--data")
