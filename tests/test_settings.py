"""The environment contract: sandbox by default, production only when complete, no secrets."""

import pytest

from responsys_assets.settings import (
    PROJECT_ROOT,
    REQUIRED_IN_PRODUCTION,
    ConfigurationError,
    FileWarehouse,
    LakeWarehouse,
    load_settings,
)


def full_env(tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("[files.example]:22 ssh-ed25519 AAAA\n")
    return {
        "RESPONSYS_SFTP_HOST": "files.responsys.net",
        "RESPONSYS_SFTP_USERNAME": "acme",
        "RESPONSYS_SFTP_PRIVATE_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-material",
        "RESPONSYS_SFTP_KNOWN_HOSTS": str(known_hosts),
        "RESPONSYS_SFTP_REMOTE_DIR": "/home/cli/acme/download",
        "RESPONSYS_ENDPOINT": "login2.responsys.net",
        "RESPONSYS_USERNAME": "api_user",
        "RESPONSYS_PASSWORD": "hunter2-very-secret",
    }


def test_no_connection_variable_means_sandbox():
    settings = load_settings({})
    assert settings.is_sandbox
    assert isinstance(settings.warehouse, FileWarehouse)
    assert settings.warehouse.path.name == "warehouse.duckdb"
    assert settings.config_path.name == "example_config.yaml"


def test_complete_environment_means_production(tmp_path):
    settings = load_settings(full_env(tmp_path))
    assert settings.mode == "production"


@pytest.mark.parametrize("missing", REQUIRED_IN_PRODUCTION)
def test_partial_environment_names_every_missing_variable(tmp_path, missing):
    env = full_env(tmp_path)
    del env[missing]
    with pytest.raises(ConfigurationError) as err:
        load_settings(env)
    message = str(err.value)
    assert missing in message
    assert "hunter2-very-secret" not in message
    assert "secret-key-material" not in message


def test_one_variable_alone_lists_all_missing():
    with pytest.raises(ConfigurationError) as err:
        load_settings({"RESPONSYS_PASSWORD": "hunter2"})
    for name in REQUIRED_IN_PRODUCTION:
        if name != "RESPONSYS_PASSWORD":
            assert name in str(err.value)
    assert "hunter2" not in str(err.value)


def test_known_hosts_must_exist(tmp_path):
    env = full_env(tmp_path)
    env["RESPONSYS_SFTP_KNOWN_HOSTS"] = str(tmp_path / "nope")
    with pytest.raises(ConfigurationError, match="RESPONSYS_SFTP_KNOWN_HOSTS"):
        load_settings(env)


def test_port_must_be_a_number(tmp_path):
    env = full_env(tmp_path) | {"RESPONSYS_SFTP_PORT": "twenty-two"}
    with pytest.raises(ConfigurationError, match="RESPONSYS_SFTP_PORT"):
        load_settings(env)


def test_relative_paths_resolve_against_the_project(tmp_path):
    settings = load_settings({"RESPONSYS_WAREHOUSE": "warehouse/other.duckdb"})
    assert settings.warehouse.path.is_absolute()
    assert settings.warehouse.path.parts[-2:] == ("warehouse", "other.duckdb")


LAKE = "ducklake:postgres:host=db.internal port=5432 dbname=lake user=responsys"


def test_a_ducklake_warehouse_keeps_its_conninfo_and_data_path():
    settings = load_settings({"RESPONSYS_WAREHOUSE": LAKE, "RESPONSYS_LAKE_DATA_PATH": "lake"})
    assert settings.warehouse == LakeWarehouse(
        conninfo="host=db.internal port=5432 dbname=lake user=responsys",
        data_path=f"{PROJECT_ROOT / 'lake'}/",
    )
    object_store = {"RESPONSYS_WAREHOUSE": LAKE, "RESPONSYS_LAKE_DATA_PATH": "s3://bucket/lake"}
    assert load_settings(object_store).warehouse.data_path == "s3://bucket/lake/"
    assert load_settings({"RESPONSYS_WAREHOUSE": LAKE}).warehouse.data_path is None


@pytest.mark.parametrize(
    "value",
    [
        LAKE + " password=hunter2-lake",
        "ducklake:postgres:password = hunter2-lake host=db",
        "ducklake:postgres:postgresql://responsys:hunter2-lake@db.internal/lake",
    ],
)
def test_a_password_in_the_conninfo_is_refused_without_echoing_it(value):
    with pytest.raises(ConfigurationError, match="RESPONSYS_WAREHOUSE_PASSWORD") as err:
        load_settings({"RESPONSYS_WAREHOUSE": value})
    assert "hunter2-lake" not in str(err.value)


@pytest.mark.parametrize("value", ["ducklake:postgres:", "ducklake:metadata.sqlite"])
def test_an_unusable_lake_is_named(value):
    with pytest.raises(ConfigurationError, match="RESPONSYS_WAREHOUSE"):
        load_settings({"RESPONSYS_WAREHOUSE": value})
