"""`vidworld compare` on the tiny config: two pairs through the real online loop, the table, the reuse."""

from __future__ import annotations

import json

import pytest

from vidworld.compare.config import CompareConfig
from vidworld.compare.run import run_compare
from vidworld.config import ConfigError, load_config


def _cfg(run, *extra):
    return load_config(CompareConfig, "configs/tiny/compare.yaml", [f"run_dir={run}", *extra])


def test_quick_comparison_end_to_end_and_reused_on_rerun(tmp_path):
    cfg = _cfg(tmp_path / "c", "quick.eval_every=50")  # evaluations (and model snapshots) at 100 and 150
    records = run_compare(cfg, quick=True, progress=False)
    root = tmp_path / "c" / "quick"
    assert [(r["model"], r["consumer"]) for r in records] == [("diffusion", "actor_critic"), ("diffusion", "cem")]
    saved = json.loads((root / "compare.json").read_text())["pairs"]
    for r in saved:
        assert {"model", "consumer", "return_mean", "return_std", "real_steps", "wall_minutes"} <= r.keys()
        assert r["real_steps"] >= 150 and len(r["seed_returns"]) == 1 and r["return_mean"] > 0
        assert r["fidelity"]["psnr"].keys() == {"1", "3"} and r["fidelity"]["imagined_transitions_per_s"] > 0
        assert r["imagined_transitions"] > 0
    # the planner pair acted with the planner: its loop trained no actor, and its run recorded planner acting
    cem_run = root / "diffusion+cem" / "seed0"
    assert "acting: planner" in (cem_run / "config.yaml").read_text()
    table = (root / "compare.md").read_text()
    assert "| diffusion | cem |" in table and "Best return at the same real-step budget" in table
    snaps = saved[0]["snapshots"]  # the world model kept at each evaluation, scored on the held-out clips
    assert [s["real_steps"] for s in snaps] == [e["real_steps"] for e in saved[0]["curves"][0]]
    # the last snapshot is the final model, scored once: its error is the fidelity's (same clips, horizon 3)
    assert snaps[-1]["psnr"] == saved[0]["fidelity"]["psnr_curve"][2]
    kept = root / "diffusion+actor_critic" / "seed0" / "snapshots"
    assert not (kept / f"real_{snaps[-1]['real_steps']}" / "heldout_horizon.json").exists()
    assert len(snaps) >= 2
    for s in snaps[:-1]:  # the earlier ones: their horizon curve only, the number in the record
        curve = json.loads((kept / f"real_{s['real_steps']}" / "heldout_horizon.json").read_text())
        assert curve["model_psnr"][2] == s["psnr"]
    for name in ("return_vs_real_steps.png", "return_vs_wall.png", "fidelity/psnr_vs_horizon.png",
                 "error_vs_return.png"):
        assert (root / name).stat().st_size > 1000
    # rerun: every finished run is reused (same numbers, no new real steps)
    again = run_compare(cfg, quick=True, progress=False)
    assert [r["seed_returns"] for r in again] == [r["seed_returns"] for r in records]
    assert [r["real_steps"] for r in again] == [r["real_steps"] for r in records]


def test_a_pair_whose_config_trains_another_kind_is_refused_before_any_work(tmp_path):
    bad = ["pairs=[{model: rssm, consumer: cem, config: configs/tiny/dream.yaml}]"]
    with pytest.raises(ValueError, match=r"pairs\[0\] \(rssm\+cem\).*model.kind 'diffusion'"):
        run_compare(_cfg(tmp_path / "c", *bad), quick=True, progress=False)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("override, says", [
    ("pairs=[{model: diffusion, consumer: oracle, config: configs/tiny/dream.yaml}]", "consumer"),
    ("pairs=[]", "pairs"),
    ("quick.seeds=[1,1]", "seeds"),
    ("quick.fidelity.report_horizons=[99]", "report_horizons"),
])
def test_bad_settings_name_their_key(tmp_path, override, says):
    with pytest.raises(ConfigError, match=says):
        _cfg(tmp_path / "c", override)


def test_a_missing_pair_config_names_it(tmp_path):
    with pytest.raises(OSError, match="nope.yaml"):
        run_compare(_cfg(tmp_path / "c", "pairs=[{model: diffusion, consumer: cem, config: nope.yaml}]"),
                    quick=True, progress=False)


def test_model_overrides_reach_only_that_kinds_pairs(tmp_path):
    from vidworld.compare.run import pair_experiment

    cfg = _cfg(tmp_path / "c", "quick.model_overrides={diffusion: [dream.agent_updates=7], rssm: [dream.agent_updates=9]}")
    exp = pair_experiment(cfg, cfg.quick, cfg.pairs[0], 0, tmp_path / "c" / "quick", 0)
    assert exp.dream.agent_updates == 7
    untouched = pair_experiment(cfg, cfg.full, cfg.pairs[0], 0, tmp_path / "c" / "full", 0)
    assert untouched.dream.agent_updates == 2  # configs/tiny/dream.yaml's own value
    with pytest.raises(ConfigError, match="model_overrides"):
        _cfg(tmp_path / "c", "quick.model_overrides={rssm: dream.agent_updates=9}")


def test_a_planner_pair_trains_no_actor_whatever_the_profile_overrides(tmp_path):
    from vidworld.compare.run import pair_experiment

    cfg = _cfg(tmp_path / "c", "quick.overrides=[dream.agent_updates=40]")
    actor, cem = (pair_experiment(cfg, cfg.quick, p, 0, tmp_path / "c" / "quick", i) for i, p in enumerate(cfg.pairs))
    assert actor.dream.agent_updates == 40 and actor.dream.acting == "actor"
    assert cem.dream.agent_updates == 0 and cem.dream.acting == "planner" and cem.plan.planner == "cem"
