"""The Definitions object as Dagster loads it: assets, pools, freshness, jobs and cadences.

The asset graph is also compared with `tests/asset_graph.json`, so a renamed asset, a moved
group or a changed dependency shows up in review. After an intended change, regenerate it with
`RESPONSYS_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/test_definitions.py -k snapshot`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from responsys_assets.config import AudiencesConfig, export_cron, load_config
from responsys_assets.definitions import build_definitions
from responsys_assets.defs.exports.assets import cron_interval
from responsys_assets.keys import (
    AUDIENCE_ASSET_KEYS,
    AUDIENCES_JOB,
    AUDIENCES_POOL,
    EVENTS,
    INGEST_JOB,
    INGEST_POOL,
    LANDED_FILES,
    WRITER_POOL,
    export_key,
)
from responsys_assets.settings import LakeWarehouse, load_settings

SNAPSHOT = Path(__file__).parent / "asset_graph.json"
GROUPS = {"ingest", "audiences", "exports"}

# The only asset that takes the warehouse resource without opening DuckDB: it reads
# `warehouse.landing_dir` to write the landing zone, so it need not wait for the writer pool.
LANDING_ONLY = {LANDED_FILES}


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("defs")
    return load_settings(
        {
            "RESPONSYS_SANDBOX_DIR": str(tmp / "sandbox"),
            "RESPONSYS_WAREHOUSE": str(tmp / "w.duckdb"),
            "RESPONSYS_LANDING_DIR": str(tmp / "landing"),
        }
    )


@pytest.fixture(scope="module")
def config(settings):
    return load_config(settings.config_path)


@pytest.fixture(scope="module")
def defs(settings, config) -> dg.Definitions:
    return build_definitions(settings, config)


@pytest.fixture(scope="module")
def graph(defs):
    return defs.resolve_asset_graph()


def asset_keys(graph) -> list[dg.AssetKey]:
    return sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())


def graph_snapshot(graph) -> dict:
    """Asset keys with their group, dependencies and checks, in a stable order."""
    assets = {}
    for key in asset_keys(graph):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "partitioned": node.is_partitioned,
            "checks": sorted(c.name for c in node.check_keys),
        }
    return {"assets": assets}


def test_definitions_load_and_validate(defs, settings):
    assert settings.is_sandbox
    dg.Definitions.validate_loadable(defs)
    # the module-level object that workspace.yaml and `dagster dev` load
    import responsys_assets.definitions as module

    assert isinstance(module.defs, dg.Definitions)


def test_every_group_is_present(graph):
    assert {graph.get(k).group_name for k in asset_keys(graph)} == GROUPS


def test_every_asset_has_a_freshness_policy(graph):
    for key in asset_keys(graph):
        assert isinstance(graph.get(key).freshness_policy, dg.FreshnessPolicy), key


def test_landed_files_has_a_freshness_policy(graph):
    assert isinstance(graph.get(LANDED_FILES).freshness_policy, dg.FreshnessPolicy)


def _windows(policy) -> tuple[timedelta, timedelta]:
    return policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta()


def test_freshness_policies_state_the_cadence(graph, config):
    """Warn after one missed tick (plus slack), fail later: the policy follows the schedule."""
    every = timedelta(minutes=config.audiences.evaluate_every_minutes)
    for key in AUDIENCE_ASSET_KEYS:
        warn, fail = _windows(graph.get(key).freshness_policy)
        assert every < warn <= 2 * every < fail, key
    for export in (e for e in config.exports if e.enabled):
        cadence = cron_interval(export_cron(export))
        warn, fail = _windows(graph.get(export_key(export.name)).freshness_policy)
        assert cadence < warn <= 2 * cadence, export.name
        assert warn < fail <= 4 * cadence + timedelta(minutes=1), export.name
    warn, fail = _windows(graph.get(EVENTS).freshness_policy)
    # Connect drops files every 6 hours: the policy tolerates one late drop, not two.
    assert timedelta(hours=6) < warn < fail <= timedelta(hours=13)


def test_every_asset_touching_duckdb_is_in_the_writer_pool(graph, defs):
    """DuckDB allows one writing process per file: every step that opens it shares one pool."""
    checked = 0
    for assets_def in graph.assets_defs:
        if "warehouse" not in assets_def.required_resource_keys:
            continue
        if assets_def.keys and set(assets_def.keys) <= LANDING_ONLY:
            continue
        assert assets_def.node_def.pool == WRITER_POOL, (assets_def.keys, assets_def.check_keys)
        checked += 1
    # events, two audience assets, six exports and the standalone feed check
    assert checked == 10
    assert graph.get(EVENTS).pools == {WRITER_POOL}


def test_jobs_and_their_selections(defs, config):
    assert defs.resolve_job_def(INGEST_JOB).partitions_def is not None
    assert set(defs.resolve_job_def(AUDIENCES_JOB).asset_layer.selected_asset_keys) == set(
        AUDIENCE_ASSET_KEYS
    )
    for export in (e for e in config.exports if e.enabled):
        job = defs.resolve_job_def(f"export_{export.name}_job")
        assert set(job.asset_layer.selected_asset_keys) == {export_key(export.name)}


def test_cadences(defs, config):
    schedules = {s.name: s for s in defs.schedules}
    by_type = {e.type: e for e in config.exports if e.enabled}
    expected = {
        f"export_{by_type['profile_list'].name}_schedule": "*/10 * * * *",
        f"export_{by_type['campaign_trigger'].name}_schedule": "* * * * *",
        "audiences_schedule": "*/10 * * * *",
        "feed_arrival_check_schedule": "30 * * * *",
    }
    for name, cron in expected.items():
        assert schedules[name].cron_schedule == cron, name
        assert schedules[name].default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedules["audiences_schedule"].job_name == AUDIENCES_JOB
    # every enabled export has a schedule on its own job
    for export in by_type.values():
        assert schedules[f"export_{export.name}_schedule"].job_name == f"export_{export.name}_job"

    sftp = defs.resolve_sensor_def("sftp_file_sensor")
    assert sftp.minimum_interval_seconds == 3600
    assert sftp.job_name == INGEST_JOB
    assert sftp.default_status == dg.DefaultSensorStatus.RUNNING

    automation = defs.resolve_sensor_def("audiences_on_new_events")
    assert isinstance(automation, dg.AutomationConditionSensorDefinition)
    assert automation.default_status == dg.DefaultSensorStatus.RUNNING
    graph = defs.resolve_asset_graph()
    for key in AUDIENCE_ASSET_KEYS:
        assert graph.get(key).automation_condition is not None, key
    assert automation.asset_selection.resolve(graph) == set(AUDIENCE_ASSET_KEYS)


def test_sensor_interval_follows_the_config(settings, config):
    faster = config.model_copy(
        update={"ingest": config.ingest.model_copy(update={"sensor_interval_seconds": 300})}
    )
    defs = build_definitions(settings, faster)
    assert defs.resolve_sensor_def("sftp_file_sensor").minimum_interval_seconds == 300


def test_asset_graph_snapshot(graph):
    current = graph_snapshot(graph)
    if os.environ.get("RESPONSYS_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert current == expected, (
        "the asset graph changed; if intended, regenerate tests/asset_graph.json "
        "(see this module's docstring) and review the diff"
    )


def test_on_a_lake_each_stage_holds_its_own_pool(settings, config):
    """A lake takes many writers: files in parallel, one audience build, each export alone."""
    lake = dataclasses.replace(
        settings, warehouse=LakeWarehouse(conninfo="host=127.0.0.1 dbname=lake user=u")
    )
    defs = build_definitions(lake, config)
    pools = {}
    for assets_def in defs.resolve_asset_graph().assets_defs:
        if "warehouse" in assets_def.required_resource_keys:
            for key in assets_def.keys or assets_def.check_keys:
                pools[key.to_user_string()] = assets_def.node_def.pool
    assert pools["responsys/events"] == INGEST_POOL
    assert pools["audiences/profiles"] == pools["audiences/memberships"] == AUDIENCES_POOL
    exports = {k: v for k, v in pools.items() if k.startswith("exports/")}
    assert exports and all(v == f"warehouse_export_{k.split('/')[1]}" for k, v in exports.items())
    assert WRITER_POOL not in pools.values()
    resource = defs.resources["warehouse"]
    assert resource.is_lake and resource.location.startswith("ducklake:postgres:")


@pytest.mark.parametrize(
    "minutes",
    typing.get_args(AudiencesConfig.model_fields["evaluate_every_minutes"].annotation),
)
def test_every_allowed_audience_cadence_loads(settings, config, minutes):
    """Dagster refuses a freshness policy whose warning comes after its failure."""
    faster = config.model_copy(
        update={
            "audiences": config.audiences.model_copy(update={"evaluate_every_minutes": minutes})
        }
    )
    build_definitions(settings, faster).resolve_asset_graph()
