"""`vidworld plan` end to end on a tiny model saved to disk (real CartPole env at 16x16)."""

from __future__ import annotations

import json

import pytest

from tests.models.tiny import FRAME, tiny_world_model
from vidworld.cli import main
from vidworld.data.video import read_video


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    model = tiny_world_model()
    model.meta["env_id"] = "CartPole-v1"
    path = tmp_path_factory.mktemp("plan") / "model"
    model.save_pretrained(path)
    return path


def test_plan_writes_report_table_and_video(model_dir, tmp_path, capsys):
    out = tmp_path / "plan"
    assert main(["plan", "--model", str(model_dir), "--episodes", "2", "--max-episode-steps", "4",
                 "--population", "4", "--iterations", "1", "--horizon", "3", "--precision", "bf16",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| random | 20 |" in printed and "| cem in world model | 2 |" in printed
    assert "planner/random return:" in printed and "bf16)" in printed
    report = json.loads((out / "plan.json").read_text())
    assert report["precision"] == "bf16" and len(report["planned"]["returns"]) == 2
    # the default planner: 4 candidates x 2 diffusion samples x 3 steps x 1 iteration per decision
    assert report["transitions_per_decision"] == 4 * 2 * 3
    assert all(1 <= n <= 4 for n in report["planned"]["lengths"])
    video = read_video(out / "plan_episode.mp4")
    assert video.shape[0] == report["planned"]["lengths"][0]  # one frame per decision of episode 1
    assert video.shape[1] == 3 * FRAME  # real frame | imagined +1 | +2 | +3, upscaled 3x


def test_uncertainty_with_a_one_step_sampler_warns(model_dir, tmp_path):
    with pytest.warns(UserWarning, match="1-step sampler"):
        main(["plan", "--model", str(model_dir), "--episodes", "1", "--max-episode-steps", "2",
              "--population", "4", "--horizon", "2", "--sampler-steps", "1", "--precision", "fp32",
              "--no-video", "--out", str(tmp_path / "p")])


def test_bad_precision_is_refused(model_dir):
    with pytest.raises(SystemExit):
        main(["plan", "--model", str(model_dir), "--precision", "fp16"])


def test_config_gives_the_plan_section_and_flags_override_it(tmp_path, capsys):
    """--config takes an experiment YAML's plan section (the demo's exact CEM, elites and discount
    included, which have no flags); explicit flags win; a bad file is one line naming it."""
    from argparse import Namespace

    from vidworld.planning.run import plan_config

    yaml = tmp_path / "exp.yaml"
    yaml.write_text("plan:\n  cem: {horizon: 8, population: 16, elites: 4, iterations: 2, discount: 0.95}\n"
                    "  max_episode_steps: 200\n  episodes: 5\n")
    flags = dict(horizon=None, population=None, iterations=None, uncertainty_samples=None,
                 uncertainty_penalty=None, planner=None, episodes=None, max_episode_steps=None, seed=None,
                 precision=None, no_video=True, config=str(yaml))
    cfg = plan_config(Namespace(**flags))
    assert (cfg.cem.horizon, cfg.cem.population, cfg.cem.elites, cfg.cem.discount) == (8, 16, 4, 0.95)
    assert (cfg.episodes, cfg.max_episode_steps, cfg.planner) == (5, 200, "cem")
    cfg = plan_config(Namespace(**{**flags, "episodes": 15, "horizon": 5, "planner": "mppi"}))
    assert (cfg.episodes, cfg.cem.horizon, cfg.cem.elites, cfg.planner) == (15, 5, 4, "mppi")
    assert main(["plan", "--model", str(tmp_path / "none"), "--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.yaml" in err[0]
