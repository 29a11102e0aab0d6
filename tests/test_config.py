"""Strict configs: unknown keys are errors naming the key; YAML round trips; CLI overrides."""

import pytest

from graphrec.cli import main
from graphrec.config import Config, load_config
from graphrec.config_base import ConfigError, reference_markdown


def test_unknown_key_names_the_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("split:\n  seed: 1\n  cold_frac: 0.3\n")
    with pytest.raises(ConfigError, match=r"unknown config key split\.cold_frac"):
        load_config(p)
    p.write_text("splitt: {}\n")
    with pytest.raises(ConfigError, match=r"unknown config key splitt"):
        load_config(p)


def test_type_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"split\.seed: expected an integer"):
        Config.from_dict({"split": {"seed": "abc"}})
    with pytest.raises(ConfigError, match=r"data\.text_cols: expected a list"):
        Config.from_dict({"data": {"text_cols": "title"}})


def test_yaml_round_trip_and_overrides(tmp_path):
    cfg = load_config(None, ["split.seed=7", "data.format=generic"])
    assert cfg.split.seed == 7 and cfg.data.format == "generic"
    cfg.save_yaml(tmp_path / "c.yaml")
    back = Config.load_yaml(tmp_path / "c.yaml")
    assert back == cfg
    with pytest.raises(ConfigError, match="unknown config key split.nope"):
        load_config(None, ["split.nope=1"])


def test_reference_lists_every_option():
    ref = reference_markdown(Config)
    assert "`split.seed`" in ref and "`data.source`" in ref


def test_cli_reports_config_errors_without_traceback(capsys):
    assert main(["config", "--set", "split.nope=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key split.nope" in err and "Traceback" not in err
