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
    for name in ("demo", "breakout", "pong", "minigrid"):
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


# --- range checks: the dataclass names its field, from_dict adds the section path -------------------------

from vidworld.config import FieldError, check_field  # noqa: E402
from vidworld.eval.config import EvalConfig  # noqa: E402
from vidworld.planning.config import PlanConfig  # noqa: E402
from vidworld.train.config import TrainConfig  # noqa: E402


@pytest.mark.parametrize(
    "override, message",
    [
        # each of these used to train on nothing (NaN losses, a saved "model") or crash mid-run
        ("train.vae_steps=0", "config key 'train.vae_steps': must be >= 1, got 0"),
        ("train.dynamics_steps=-5", "config key 'train.dynamics_steps': must be >= 1, got -5"),
        ("train.dynamics_batch_size=0", "config key 'train.dynamics_batch_size': must be >= 1, got 0"),
        ("train.vae_batch_size=0", "config key 'train.vae_batch_size': must be >= 1, got 0"),
        ("train.checkpoint_every=0", "config key 'train.checkpoint_every': must be >= 1, got 0"),
        ("train.log_every=0", "config key 'train.log_every': must be >= 1, got 0"),
        ("train.grad_accum=0", "config key 'train.grad_accum': must be >= 1, got 0"),
        ("train.keep_checkpoints=0", "config key 'train.keep_checkpoints': must be >= 1, got 0"),
        ("train.vae_lr=0", "config key 'train.vae_lr': must be > 0, got 0.0"),
        ("train.dynamics_lr=-1e-3", "config key 'train.dynamics_lr': must be > 0, got -0.001"),
        ("train.vae_lr=.nan", "config key 'train.vae_lr': must be a finite number, got nan"),
        ("train.dynamics_lr=.inf", "config key 'train.dynamics_lr': must be a finite number, got inf"),
        ("train.ema_decay=1", "config key 'train.ema_decay': must be in [0, 1), got 1.0"),
        ("train.ema_decay=-0.1", "config key 'train.ema_decay': must be in [0, 1), got -0.1"),
        ("train.weight_decay=-1", "config key 'train.weight_decay': must be >= 0, got -1.0"),
        ("train.warmup_steps=-1", "config key 'train.warmup_steps': must be >= 0, got -1"),
        ("train.grad_clip=-1", "config key 'train.grad_clip': must be >= 0 (0 = no clipping), got -1.0"),
        ("train.num_threads=-2",
         "config key 'train.num_threads': must be >= 0 (0 = torch's default), got -2"),
        ("train.mixed_precision=fp8",
         "config key 'train.mixed_precision': must be one of ['no', 'fp16', 'bf16', 'auto'], got 'fp8'"),
        ("train.seed=-1", "config key 'train.seed': must be in [0, 4294967296), got -1"),
        ("eval.horizon=0", "config key 'eval.horizon': must be >= 1, got 0"),
        ("eval.max_clips=0", "config key 'eval.max_clips': must be >= 1, got 0"),
        ("eval.batch_size=0", "config key 'eval.batch_size': must be >= 1, got 0"),
        ("eval.video_clips=0", "config key 'eval.video_clips': must be >= 1, got 0"),
        ("eval.controllability_clips=-1", "config key 'eval.controllability_clips': must be >= 0"),
        ("plan.episodes=0", "config key 'plan.episodes': must be >= 1, got 0"),
        ("plan.planner=greedy",
         "config key 'plan.planner': must be one of ['cem', 'mppi', 'mcts'], got 'greedy'"),
        ("plan.seed=-3", "config key 'plan.seed': must be in [0, 4294967296), got -3"),
        # CEMConfig (not yet on check_field) raises "CEMConfig.horizon must be ..."; the key is still full
        ("plan.cem.horizon=0", "config key 'plan.cem.horizon': must be >= 1, got 0"),
        ("muzero.learn.consistency_weight=-1",
         "config key 'muzero.learn.consistency_weight': must be >= 0, got -1.0"),
        # the consistency heads' BatchNorm cannot normalise one sample
        ("muzero.learn.consistency_weight=2 muzero.learn.batch_size=1",
         "config key 'muzero.learn.batch_size': must be >= 2 with consistency_weight > 0"),
    ],
)
def test_out_of_range_values_name_the_dotted_key_and_the_range(override, message):
    with pytest.raises(ConfigError) as info:
        load_experiment(None, override.split(" "))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_same_range_errors_come_from_a_yaml_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  log_every: 0\n")
    with pytest.raises(ConfigError, match=r"^config key 'train\.log_every': must be >= 1, got 0$"):
        load_experiment(p)


def test_boundary_values_are_accepted():
    cfg = load_experiment(None, ["train.warmup_steps=0", "train.grad_clip=0", "train.ema_decay=0",
                                 "train.num_threads=0", "train.vae_steps=1", "eval.controllability_clips=0",
                                 "train.mixed_precision=bf16"])
    assert cfg.train.vae_steps == 1 and cfg.eval.controllability_clips == 0


def test_a_config_built_in_code_names_its_class():
    with pytest.raises(FieldError, match=r"^TrainConfig\.log_every: must be >= 1, got 0$") as info:
        TrainConfig(log_every=0)
    assert info.value.field == "log_every" and isinstance(info.value, ValueError)
    with pytest.raises(FieldError, match=r"EvalConfig\.horizon"):
        EvalConfig(horizon=0)
    with pytest.raises(FieldError, match=r"PlanConfig\.precision: must be one of"):
        PlanConfig(precision="fp16")


@dataclass
class Checked:
    steps: int = 1
    rate: float = 0.5

    def __post_init__(self) -> None:
        check_field(self, "steps", ge=1)
        check_field(self, "rate", gt=0, le=1)


@dataclass
class Legacy:
    n: int = 1

    def __post_init__(self) -> None:
        if self.n == 2:
            raise ValueError("n and something else disagree")


@dataclass
class Deep:
    a: Outer = field(default_factory=Outer)
    b: dict = field(default_factory=dict)
    checked: Checked = field(default_factory=Checked)
    legacy: Legacy = field(default_factory=Legacy)


def test_the_dotted_key_is_built_at_any_depth():
    with pytest.raises(ConfigError, match=r"^config key 'checked\.rate': must be in \(0, 1\], got 2\.0$"):
        from_dict(Deep, {"checked": {"rate": 2}})
    with pytest.raises(ConfigError, match=r"^config key 'steps': must be >= 1, got 0$"):
        from_dict(Checked, {"steps": 0})
    # a component's plain ValueError still names its section
    with pytest.raises(ConfigError, match=r"^config section 'legacy': n and something else disagree$"):
        from_dict(Deep, {"legacy": {"n": 2}})


# --- broken YAML: one line naming the file, line and column ----------------------------------------------

@pytest.mark.parametrize(
    "text, where, problem",
    [
        ("train:\n  vae_steps: 5\n\tlog_every: 2\n", "line 3, column 1", "spaces, not tabs"),
        ("train: {vae_steps: [1, 2\neval: {}\n", "line 2, column 5",
         "flow sequence started at line 1, column 20"),
        ("run_dir: 'runs/x\n", "line 2, column 1", "quoted scalar started at line 1, column 10"),
        ("train:\n  vae_steps: a: b\n", "line 2, column 15", "mapping values are not allowed here"),
    ],
)
def test_broken_yaml_is_one_line_naming_file_line_and_column(tmp_path, text, where, problem):
    p = tmp_path / "broken.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(Outer, p)
    msg = str(info.value)
    assert msg.startswith(f"config file {p}, {where}: invalid YAML: ") and problem in msg, msg
    assert "\n" not in msg and info.value.__cause__ is None and info.value.__suppress_context__


def test_other_unreadable_config_files_and_override_values(tmp_path):
    (tmp_path / "bin.yaml").write_bytes(b"rate: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"bin\.yaml: not UTF-8 text"):
        load_config(Outer, tmp_path / "bin.yaml")
    with pytest.raises(ConfigError, match=r"is a directory; expected a YAML file"):
        load_config(Outer, tmp_path)
    with pytest.raises(ConfigError, match=r"^override 'inner\.sizes=\[1,': the value is not valid YAML: "):
        load_config(Outer, None, ["inner.sizes=[1,"])


def test_exponent_floats_without_a_dot_are_floats(tmp_path):
    # PyYAML (YAML 1.1) parses `1e-3` as the string '1e-3': it used to be "expected float, got '1e-3'"
    p = tmp_path / "c.yaml"
    p.write_text("rate: 1e-3\n")
    assert load_config(Outer, p).rate == 0.001
    assert load_experiment(None, ["train.dynamics_lr=3e-4"]).train.dynamics_lr == 3e-4
    with pytest.raises(ConfigError, match=r"'rate': expected float, got 'fast'"):
        load_config(Outer, None, ["rate=fast"])
