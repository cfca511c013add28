"""Configs are data: every shipped preset loads and validates; mistakes name the file and the key."""

from __future__ import annotations

import pytest

from arctic_kd.config import Config, load_config
from arctic_kd.errors import ConfigError
from arctic_kd.presets import CONFIG_PRESETS

CONFIGS = sorted(CONFIG_PRESETS.glob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.data.num_frames > 0 and config.optim.epochs > 0


def test_overrides_reach_nested_sections_and_parse_as_yaml():
    config = load_config(
        None, ["optim.lr=0.2", "distill.kd.mode=shift", "data.crop_scale=[0.5, 1]", "seed=3"]
    )
    assert config.optim.lr == 0.2 and config.distill.kd.mode == "shift"
    assert config.data.crop_scale == (0.5, 1.0) and config.seed == 3


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", "unknown key 'lrr'"),
        ("distill.kd.mode=soft", "'soft' is not one of"),
        ("optim.epochs=ten", "expected int"),
        ("data.crop_scale=[1]", "expected 2 values"),
        ("optim", "expects key=value"),
        ("train.eval_every=0", "eval_every must be at least 1"),
        ("optim.teacher_epochs=-1", "teacher_epochs at least 0"),
        ("optim.epochs=0", "epochs must be at least 1"),
        ("optim.label_smoothing=-0.1", "optim.label_smoothing must be in"),
        ("optim.teacher_label_smoothing=1", "optim.teacher_label_smoothing must be in"),
    ],
)
def test_bad_overrides_say_what_is_wrong(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_bad_files_name_the_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_config(broken)
    typo = tmp_path / "typo.yaml"
    typo.write_text("optim:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: optim: unknown key 'epochz'"):
        load_config(typo)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")


def test_a_config_survives_a_round_trip_through_a_plain_dict():
    from arctic_kd.config import config_from_dict

    config = load_config(None, ["distill.arm.stages=[layer3, layer4]"])
    assert config_from_dict(config.to_dict()) == config
