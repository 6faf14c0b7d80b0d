import json

from vidworld.train.log import WindowMean, append_log


def test_window_mean_averages_since_the_last_pop_and_rows_append(tmp_path):
    w = WindowMean()
    for v in (1.0, 2.0, 6.0):
        w.add(loss=v, mse=2 * v)
    assert w.pop() == {"loss": 3.0, "mse": 6.0}
    w.add(loss=10.0)
    assert w.pop() == {"loss": 10.0}
    assert w.pop() == {}
    append_log(tmp_path / "log.jsonl", {"step": 1, "loss": 3.0})
    append_log(tmp_path / "log.jsonl", {"step": 2, "loss": 10.0})
    rows = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in rows] == [3.0, 10.0]
