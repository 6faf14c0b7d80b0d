from dataclasses import dataclass, field

import pytest

from vidworld.config import ConfigError, apply_overrides, from_dict, load_config, save_config, to_dict
from vidworld.experiment import ExperimentConfig, load_experiment


@dataclass
class Inner:
    n: int = 1
    name: str = "a"
    sizes: tuple[int, ...] = (1, 2)
    maybe: int | None = None


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    rate: float = 0.5
    flag: bool = False


def test_nested_values_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("inner: {n: 3, sizes: [4, 5]}\nrate: 1\n")
    cfg = load_config(Outer, p, ["inner.name=007", "flag=true", "inner.maybe=null", "rate=2.5e-3"])
    assert cfg == Outer(Inner(3, "007", (4, 5), None), 0.0025, True)


@pytest.mark.parametrize(
    "data, match",
    [
        ({"inner": {"m": 1}}, r"unknown config key 'inner\.m'"),
        ({"rat": 1}, r"unknown config key 'rat'"),
        ({"inner": {"n": "three"}}, r"'inner\.n': expected int"),
        ({"flag": "yes"}, r"'flag': expected bool"),
        ({"inner": {"sizes": "1,2"}}, r"'inner\.sizes': expected a list"),
        ({"inner": 3}, r"'inner': expected a mapping"),
    ],
)
def test_unknown_keys_and_wrong_types_name_the_key(data, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(Outer, data)


def test_bad_overrides_and_files(tmp_path):
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_overrides({}, ["inner.n"], Outer)
    with pytest.raises(ConfigError, match=r"unknown config key 'nope'"):
        load_config(Outer, None, ["nope.n=1"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(Outer, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping at top level"):
        load_config(Outer, tmp_path / "list.yaml")


def test_resolved_config_round_trips(tmp_path):
    cfg = load_experiment("configs/demo.yaml", ["train.dynamics_steps=7"])
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_experiment(tmp_path / "resolved.yaml") == cfg
    assert (tmp_path / "resolved.yaml").stat().st_mode & 0o044  # readable by others, like any file


def test_every_shipped_config_loads_and_demo_matches_the_built_in_defaults():
    for name in ("demo", "breakout", "minigrid"):
        load_experiment(f"configs/{name}.yaml")
    demo, builtin = to_dict(load_experiment("configs/demo.yaml")), to_dict(ExperimentConfig())

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    differ = {k for k, v in flat(demo).items() if flat(builtin)[k] != v}
    # the demo caps real episodes at 200 steps to stay under 15 minutes and pins 2 threads
    assert differ <= {"plan.max_episode_steps", "train.num_threads"}, differ


@dataclass
class Tuned:
    inner: Inner = field(default_factory=lambda: Inner(n=7, name="tuned"))


def test_a_partial_nested_section_starts_from_the_fields_own_default():
    # `plan: {cem: {horizon: 10}}` must keep PlanConfig's tuned CEM settings, not fall back to CEMConfig()
    assert from_dict(Tuned, {"inner": {"sizes": [9]}}) == Tuned(Inner(n=7, name="tuned", sizes=(9,)))
    cfg = load_experiment(None, ["plan.cem.horizon=10"])
    assert cfg.plan.cem.horizon == 10
    assert cfg.plan.cem.uncertainty_samples == ExperimentConfig().plan.cem.uncertainty_samples == 2
    with pytest.raises(ConfigError, match=r"unknown config key 'inner\.m'"):
        from_dict(Tuned, {"inner": {"m": 1}})
