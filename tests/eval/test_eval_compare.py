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
