"""`vidworld eval-wm --model A --model B`: several kinds on the same clips, one table and one chart."""

from __future__ import annotations

import json

from tests.models.tiny import FRAME, K, tiny_history_model, tiny_world_on_disk
from vidworld.cli import main
from vidworld.protocol import ActionSpec
from vidworld.world_models.copy_last import CopyLastFrameModel


def test_several_models_on_one_table_and_chart(tmp_path, capsys):
    world = tiny_world_on_disk(tmp_path)
    hist = tiny_history_model()
    hist.meta.update(world.model.meta)
    hist.save_pretrained(tmp_path / "hist")
    CopyLastFrameModel(ActionSpec(n=2), K, FRAME, meta=dict(world.model.meta)).save_pretrained(tmp_path / "copy")
    out = tmp_path / "cmp"
    code = main(["eval-wm", "--model", str(world.model_dir), "--model", str(tmp_path / "hist"),
                 "--model", str(tmp_path / "copy"), "--horizon", "3", "--max-clips", "6", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    table = (out / "compare.md").read_text()
    first = tmp_path.name  # a folder called "model" is named after its run folder
    for name in (f"| {first} |", "| hist |", "| copy |", "| copy last frame |", f"| {first} autoencoder ceiling |"):
        assert name in table
    assert "| moving PSNR 1 |" in table.splitlines()[0] + "|"
    data = json.loads((out / "compare.json").read_text())
    assert set(data) == {first, "hist", "copy"}
    # same clips for every model: the copy-last reference is identical in every report, and the copy-last
    # MODEL scores exactly that reference
    refs = {json.dumps(d["horizon"]["copy_last_psnr"]) for d in data.values()}
    assert len(refs) == 1
    assert data["copy"]["horizon"]["model_psnr"] == data["copy"]["horizon"]["copy_last_psnr"]
    moving = data["copy"]["moving_region"]["moving_psnr_db"]
    assert moving["model"] == moving["copy_last"] and len(moving["model"]) == 3
    assert all(d["imagination"]["transitions_per_s"] > 0 for d in data.values())
    assert (out / "psnr_vs_horizon.png").stat().st_size > 1000 and (out / "hist" / "summary.json").is_file()


def test_val_fraction_scores_more_of_a_separate_heldout_set(tmp_path, capsys):
    """--val-fraction widens the scored share of --data; a separately collected set raises no train/val
    warning, the model's own training data scored at another fraction does, and out-of-range is refused."""
    import warnings

    from vidworld.data.collect import CollectConfig, collect
    from vidworld.envs.pixels import PixelEnvConfig

    world = tiny_world_on_disk(tmp_path)
    held = tmp_path / "held"  # collected separately (another seed), ~14 random episodes
    collect(CollectConfig(env=PixelEnvConfig(frame_size=FRAME), steps=300, out=str(held), seed=5), progress=False)
    base = ["eval-wm", "--model", str(world.model_dir), "--horizon", "2", "--max-clips", "64"]

    def clips(out: str) -> int:
        return json.loads((tmp_path / out / "summary.json").read_text())["horizon"]["n_clips"]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any train/val warning fails here
        assert main(base + ["--data", str(held), "--out", str(tmp_path / "a")]) == 0
        assert main(base + ["--data", str(held), "--val-fraction", "0.9", "--out", str(tmp_path / "b")]) == 0
    assert clips("b") > clips("a")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(base + ["--data", str(world.data), "--val-fraction", "0.9", "--out", str(tmp_path / "c")]) == 0
    assert any("may include episodes it trained on" in str(w.message) for w in caught)
    assert main(base + ["--val-fraction", "1.0"]) == 2
    assert "--val-fraction must be in (0, 1)" in capsys.readouterr().err
