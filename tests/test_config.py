"""The YAML config: typos and Responsys naming errors fail at load, naming the culprit."""

from pathlib import Path

import pytest

from responsys_assets.config import ConfigError, load_config, parse_config
from responsys_assets.settings import DEFAULT_CONFIG, PROJECT_ROOT
from responsys_assets.validation import validate_project

EXPORT = """
exports:
  - name: vip
    type: profile_list
    audience: engaged
    list: CONTACTS_LIST
    folder: Audiences
"""


def test_shipped_example_declares_every_export_type_and_validates():
    config = load_config(PROJECT_ROOT / DEFAULT_CONFIG)
    types = {e.type for e in config.exports}
    assert types == {
        "profile_list",
        "campaign_trigger",
        "custom_event",
        "pet",
        "supplemental_table",
        "sftp_file",
    }
    audiences = validate_project(config)
    assert {"engaged", "lapsing", "clicked_twice_no_purchase"} <= {a.name for a in audiences}


def test_unknown_key_is_refused_with_its_path():
    with pytest.raises(ConfigError) as err:
        parse_config(EXPORT + "    colour: blue\n", source="my.yaml")
    assert "my.yaml" in str(err.value)
    assert "colour" in str(err.value)


def test_wrong_type_is_refused():
    with pytest.raises(ConfigError, match="sensor_interval_seconds"):
        parse_config("ingest:\n  sensor_interval_seconds: often\n")


def test_unknown_time_zone_is_refused():
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        parse_config("ingest:\n  timezone: Mars/Olympus\n")


def test_export_of_an_undefined_audience_is_refused():
    config = parse_config(EXPORT.replace("audience: engaged", "audience: ghosts"))
    with pytest.raises(ConfigError, match="export 'vip': audience 'ghosts' is not defined"):
        validate_project(config)


@pytest.mark.parametrize(
    ("field", "value", "expect"),
    [
        ("list", "CONTACTS LIST", "character"),
        ("list", "A" * 31, "31 characters"),
        ("folder", "Bad/Folder", "folder"),
    ],
)
def test_names_that_break_responsys_rules_are_refused(field, value, expect):
    text = EXPORT.replace(
        f"    {field}: " + ("CONTACTS_LIST" if field == "list" else "Audiences"),
        f"    {field}: '{value}'",
    )
    with pytest.raises(ConfigError) as err:
        validate_project(parse_config(text))
    assert "export 'vip'" in str(err.value)
    assert expect in str(err.value)


def test_custom_field_with_trailing_underscore_is_refused():
    text = EXPORT + "    fields:\n      SCORE_: recency_score\n"
    with pytest.raises(ConfigError, match="SCORE_"):
        validate_project(parse_config(text))


def test_hash_match_cannot_insert():
    text = EXPORT + "    merge_rule:\n      match_column_1: EMAIL_SHA256_HASH\n"
    with pytest.raises(ConfigError, match="hash match can only update"):
        parse_config(text)


def test_audience_rule_that_runs_a_statement_is_refused():
    text = (
        "audiences:\n  definitions:\n    - name: evil\n"
        '      rule: "1=1; drop table audiences.profiles"\n'
    )
    with pytest.raises(ConfigError, match="evil"):
        validate_project(parse_config(text))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(Path(tmp_path / "missing.yaml"))
