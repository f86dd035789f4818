"""The automation as the Dagster daemon evaluates it: the SFTP sensor against the real embedded
sandbox, the schedules, and the automation condition that re-evaluates audiences.

The sensor is called the way the daemon calls it (a context with the stored cursor); the
partitions it asks for are then added to the instance, which is what the daemon does between
two ticks.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from responsys_assets.config import ProjectConfig, load_config
from responsys_assets.definitions import build_definitions
from responsys_assets.defs.ingest.assets import CHANGED_TAG
from responsys_assets.defs.ingest.partitions import responsys_files
from responsys_assets.keys import AUDIENCES_JOB, EVENTS, MEMBERSHIPS, PROFILES, export_key
from responsys_assets.sandbox import SampleData, Sandbox
from responsys_assets.sandbox.resources import SandboxSFTPResource
from responsys_assets.settings import DEFAULT_CONFIG, PROJECT_ROOT, load_settings

SENSOR = "sftp_file_sensor"


@pytest.fixture(scope="module")
def config() -> ProjectConfig:
    """The shipped example, without the settle wait (the sandbox writes files atomically)."""
    shipped = load_config(PROJECT_ROOT / DEFAULT_CONFIG)
    return shipped.model_copy(
        update={"ingest": shipped.ingest.model_copy(update={"settle_seconds": 0})}
    )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, config):
    box = Sandbox(tmp_path_factory.mktemp("sandbox"), config, SampleData(contacts=50, days=2))
    box.start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def defs(sandbox, config, tmp_path_factory) -> dg.Definitions:
    tmp = tmp_path_factory.mktemp("defs")
    settings = load_settings(
        {
            "RESPONSYS_SANDBOX_DIR": str(sandbox.folder),
            "RESPONSYS_WAREHOUSE": str(tmp / "w.duckdb"),
            "RESPONSYS_LANDING_DIR": str(tmp / "landing"),
        }
    )
    return build_definitions(settings, config)


@pytest.fixture(scope="module")
def stored_instance():
    """A SQLite-backed instance (one per module: each takes seconds to create)."""
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def instance(stored_instance):
    """The stored instance with no file partition yet, as on a first deployment."""
    for key in stored_instance.get_dynamic_partitions(responsys_files.name):
        stored_instance.delete_dynamic_partition(responsys_files.name, key)
    return stored_instance


def outbound(sandbox: Sandbox) -> Path:
    return sandbox.sftp_root / "outbound"


def remote_names(sandbox: Sandbox) -> set[str]:
    return {p.name for p in outbound(sandbox).iterdir() if not p.name.startswith(".")}


class Daemon:
    """Ticks the sensor as the daemon would: stored cursor in, partition requests applied."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance, sandbox: Sandbox):
        self.defs = defs
        self.instance = instance
        self.sensor = defs.resolve_sensor_def(SENSOR)
        self.resources = {"sftp": SandboxSFTPResource(sandbox_dir=str(sandbox.folder))}
        self.cursor: str | None = None

    def context(self, cursor: str | None) -> dg.SensorEvaluationContext:
        return dg.build_sensor_context(
            instance=self.instance, cursor=cursor, resources=self.resources
        )

    def tick(self) -> dg.SensorResult:
        result = self.sensor(self.context(self.cursor))
        assert isinstance(result, dg.SensorResult)
        for request in result.dynamic_partitions_requests or []:
            assert isinstance(request, dg.AddDynamicPartitionsRequest)
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        self.cursor = result.cursor
        return result

    def partitions(self) -> set[str]:
        return set(self.instance.get_dynamic_partitions(responsys_files.name))


@pytest.fixture
def daemon(defs, instance, sandbox) -> Daemon:
    return Daemon(defs, instance, sandbox)


@pytest.fixture
def extra_files(sandbox):
    """Files a test drops on the SFTP server, removed afterwards (other tests share it)."""
    added: list[Path] = []

    def drop(name: str, data: bytes) -> Path:
        path = outbound(sandbox) / name
        path.write_bytes(data)
        added.append(path)
        return path

    yield drop
    for path in added:
        path.unlink(missing_ok=True)


# -- the SFTP sensor ---------------------------------------------------------------------------


def test_first_tick_adds_a_partition_and_a_run_per_file(defs, instance, sandbox):
    """Evaluated with evaluate_tick, which also checks the partition keys against the job."""
    context = dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        definitions=defs,
        resources={"sftp": SandboxSFTPResource(sandbox_dir=str(sandbox.folder))},
    )
    data = defs.resolve_sensor_def(SENSOR).evaluate_tick(context)
    files = remote_names(sandbox)
    assert len(files) >= 10  # every feed of the sample, some encrypted
    assert any(f.endswith(".gpg") for f in files)
    [add] = data.dynamic_partitions_requests
    assert add.partitions_def_name == responsys_files.name
    assert set(add.partition_keys) == files
    assert sorted(r.partition_key for r in data.run_requests) == sorted(files)
    run_keys = [r.run_key for r in data.run_requests]
    assert len(set(run_keys)) == len(files)
    for request in data.run_requests:
        assert request.run_key.startswith(f"{request.partition_key}:")
        assert request.tags["dagster/sensor_name"] == SENSOR
        assert CHANGED_TAG not in request.tags
    assert data.skip_message is None
    assert data.cursor


def test_second_tick_with_the_cursor_requests_nothing(daemon, sandbox):
    first = daemon.tick()
    assert len(first.run_requests) == len(remote_names(sandbox))
    assert daemon.partitions() == remote_names(sandbox)
    second = daemon.tick()
    assert second.run_requests == []
    assert not second.dynamic_partitions_requests
    assert second.skip_reason is not None
    assert "no new files" in second.skip_reason.skip_message
    assert second.cursor == first.cursor


def test_a_new_file_is_requested_alone(daemon, sandbox, extra_files):
    daemon.tick()
    template = sorted(outbound(sandbox).glob("*_SENT_*.txt"))[0]
    new = extra_files("10001_SENT_20990101_000000.txt", template.read_bytes())
    result = daemon.tick()
    assert [r.partition_key for r in result.run_requests] == [new.name]
    [add] = result.dynamic_partitions_requests
    assert list(add.partition_keys) == [new.name]
    assert CHANGED_TAG not in result.run_requests[0].tags
    assert new.name in daemon.partitions()
    assert daemon.tick().run_requests == []


def test_a_file_changed_on_the_server_is_requested_again_and_tagged(daemon, sandbox):
    first = daemon.tick()
    path = sorted(outbound(sandbox).glob("*_BOUNCE_*.txt"))[0]
    original = path.read_bytes()
    stat = path.stat()
    try:
        path.write_bytes(original + original.splitlines(keepends=True)[-1])  # one more row
        os.utime(path, (stat.st_atime, stat.st_mtime))  # same mtime: the size alone tells
        result = daemon.tick()
    finally:
        path.write_bytes(original)
        os.utime(path, (stat.st_atime, stat.st_mtime))
    [request] = result.run_requests
    assert request.partition_key == path.name
    assert request.tags == {CHANGED_TAG: "true"}
    old_key = next(r.run_key for r in first.run_requests if r.partition_key == path.name)
    assert request.run_key != old_key  # a new run key, or the daemon would drop the request
    assert not result.dynamic_partitions_requests  # same partition, not a new one


def test_hostile_names_are_refused_with_a_warning_never_a_partition(
    daemon, sandbox, extra_files, capfd
):
    daemon.tick()
    hostile = ["bad name.txt", "10001_OPEN_$(id).txt", "x...y.txt", "..evil"]
    for name in hostile:
        extra_files(name, b"RIID_,EVENT_CAPTURED_DT\n1,01-Jan-2026 00:00:00\n")
    capfd.readouterr()
    result = daemon.tick()
    warned = capfd.readouterr().err  # the sensor's context.log writes to the console
    assert result.run_requests == []
    assert not result.dynamic_partitions_requests
    assert not set(hostile) & daemon.partitions()
    for name in hostile[:3]:
        assert f"refused remote file {name!r}" in warned
    # a hidden file is never even listed (the SFTP listing skips dot files)
    assert "..evil" not in warned
    for name in hostile:
        assert name not in (result.cursor or "")


def test_the_cursor_survives_a_restart(daemon, sandbox, extra_files):
    first = daemon.tick()
    stored = daemon.cursor
    # a new instance object on the same storage and a new context: a restarted daemon
    with dg.DagsterInstance.from_ref(daemon.instance.get_ref()) as reopened:
        restarted = Daemon(daemon.defs, reopened, sandbox)
        restarted.cursor = stored
        assert restarted.partitions() == remote_names(sandbox)
        assert restarted.tick().run_requests == []
        new = extra_files("10001_OPT_OUT_20990101_000000.txt", b"RIID_\n")
        assert [r.partition_key for r in restarted.tick().run_requests] == [new.name]
    # With the cursor lost, known files are requested again under the same run keys,
    # which the daemon drops as duplicates: nothing is ingested twice.
    lost = Daemon(daemon.defs, daemon.instance, sandbox)
    again = {r.partition_key: r.run_key for r in lost.tick().run_requests}
    before = {r.partition_key: r.run_key for r in first.run_requests}
    assert {k: again[k] for k in before} == before


# -- schedules ---------------------------------------------------------------------------------


def test_export_and_audience_schedules_request_their_job(defs, config):
    when = datetime(2026, 1, 5, 12, 10, tzinfo=UTC)
    targets = {"audiences_schedule": (AUDIENCES_JOB, {PROFILES, MEMBERSHIPS})}
    for export in (e for e in config.exports if e.enabled):
        job = f"export_{export.name}_job"
        targets[f"export_{export.name}_schedule"] = (job, {export_key(export.name)})
    assert len(targets) == 7
    for name, (job_name, keys) in targets.items():
        schedule = defs.resolve_schedule_def(name)
        data = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=when))
        [request] = data.run_requests
        assert request.tags["dagster/schedule_name"] == name
        assert schedule.job_name == job_name
        assert request.job_name in (None, job_name)
        job = defs.resolve_job_def(job_name)
        assert set(job.asset_layer.selected_asset_keys) == keys, name


# -- declarative automation: audiences when new events land ---------------------------------


def _land(instance: dg.DagsterInstance, *files: str) -> None:
    """A file's events were loaded (what a successful ingest run records)."""
    instance.add_dynamic_partitions(responsys_files.name, list(files))
    for name in files:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=EVENTS, partition=name)
        )


class Automation:
    """Evaluates the `audiences_on_new_events` sensor's selection, keeping its cursor."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance):
        self.defs = defs
        self.instance = instance
        self.selection = defs.resolve_sensor_def("audiences_on_new_events").asset_selection
        self.cursor = None
        self.now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def tick(self) -> dict[dg.AssetKey, int]:
        self.now += timedelta(minutes=1)
        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            asset_selection=self.selection,
            evaluation_time=self.now,
            cursor=self.cursor,
        )
        self.cursor = result.cursor
        return {key: result.get_num_requested(key) for key in (PROFILES, MEMBERSHIPS)}


def test_audiences_are_requested_when_new_events_land_and_only_then(defs):
    instance = dg.DagsterInstance.ephemeral()
    automation = Automation(defs, instance)
    assert automation.tick() == {PROFILES: 0, MEMBERSHIPS: 0}  # nothing loaded yet
    _land(instance, "10001_OPEN_20260105_060000.txt.gpg")
    assert automation.tick() == {PROFILES: 1, MEMBERSHIPS: 1}
    assert automation.tick() == {PROFILES: 0, MEMBERSHIPS: 0}  # no new events
    assert automation.tick() == {PROFILES: 0, MEMBERSHIPS: 0}
    _land(instance, "10001_CLICK_20260105_120000.txt.gpg")
    assert automation.tick() == {PROFILES: 1, MEMBERSHIPS: 1}
    assert automation.tick() == {PROFILES: 0, MEMBERSHIPS: 0}


def test_a_file_that_failed_to_load_does_not_hold_audiences_back(defs):
    instance = dg.DagsterInstance.ephemeral()
    automation = Automation(defs, instance)
    automation.tick()
    instance.add_dynamic_partitions(responsys_files.name, ["10001_OPEN_20260105_060000.txt"])
    _land(instance, "10001_CLICK_20260105_120000.txt")  # the OPEN file never loaded
    assert automation.tick()[PROFILES] == 1
