"""A run killed while it holds the `duckdb_writer` pool slot must not block the next run: the
killed process is a real child, the instance is a real SQLite Dagster instance with the repo's
dagster.yaml (pools, op granularity)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from responsys_assets.cli.run_owner import (
    OWNER_TAG,
    is_alive,
    owner_tags,
    process_identity,
    recover_orphaned_runs,
)
from responsys_assets.settings import PROJECT_ROOT

JOB_MODULE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import dagster as dg

    @dg.op(pool="duckdb_writer")
    def write_warehouse():
        Path(sys.argv[1]).write_text("holding the slot")
        time.sleep(float(sys.argv[2]))

    @dg.job
    def writer_job():
        write_warehouse()

    if __name__ == "__main__":
        from responsys_assets.cli.run_owner import owner_tags
        result = writer_job.execute_in_process(
            instance=dg.DagsterInstance.get(), tags=owner_tags(), raise_on_error=False
        )
        sys.exit(0 if result.success else 1)
    """
)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    (tmp_path / "writer_job.py").write_text(JOB_MODULE)
    return home


def run_writer(tmp_path: Path, hold_seconds: float) -> subprocess.Popen:
    marker = tmp_path / f"holding-{time.monotonic_ns()}"
    env = {**os.environ, "PYTHONPATH": f"{PROJECT_ROOT}{os.pathsep}{tmp_path}"}
    child = subprocess.Popen(
        [sys.executable, str(tmp_path / "writer_job.py"), str(marker), str(hold_seconds)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, "the writer ended before holding its slot"
        assert time.monotonic() < deadline, "the writer never claimed its slot"
        time.sleep(0.05)
    return child


def slot_holders(instance) -> set[str]:
    return instance.event_log_storage.get_concurrency_run_ids()


def test_a_killed_run_is_failed_and_its_slot_freed(home, tmp_path):
    killed = run_writer(tmp_path, 600)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(30)
    instance = dg.DagsterInstance.get()
    [stale] = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    assert slot_holders(instance) == {stale.dagster_run.run_id}

    assert recover_orphaned_runs(instance) == [stale.dagster_run.run_id]

    run = instance.get_run_by_id(stale.dagster_run.run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert slot_holders(instance) == set()
    # The next run gets the slot and finishes.
    following = run_writer(tmp_path, 0)
    assert following.wait(120) == 0
    assert recover_orphaned_runs(instance) == []


def test_a_running_run_is_left_alone(home, tmp_path):
    alive = run_writer(tmp_path, 600)
    try:
        instance = dg.DagsterInstance.get()
        assert recover_orphaned_runs(instance) == []
        [running] = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        assert running.dagster_run.tags[OWNER_TAG] == process_identity(alive.pid)
        assert slot_holders(instance) == {running.dagster_run.run_id}
    finally:
        os.kill(alive.pid, signal.SIGKILL)
        alive.wait(30)


def test_identity_names_one_process_even_when_its_pid_is_reused():
    me = process_identity()
    assert is_alive(me)
    host, pid, started = me.rsplit(":", 2)
    assert pid == str(os.getpid()) and started != "?"
    assert not is_alive(f"{host}:{pid}:{int(started) + 1}")  # same pid, another process
    assert is_alive(f"another-host:{pid}:1")  # cannot be checked from here: never failed
    assert owner_tags() == {OWNER_TAG: me}


def test_an_exited_process_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(child.pid)
    child.wait(30)
    # Reaped: the pid is free (or, rarely, reused by a process with another start time).
    assert not is_alive(identity)


def test_recovery_ignores_runs_without_an_owner(home):
    """Runs the daemon or the UI launched are watched by Dagster's run monitoring, not by us."""
    instance = dg.DagsterInstance.get()

    @dg.op
    def noop():
        return None

    @dg.job
    def plain_job():
        noop()

    run = instance.create_run_for_job(plain_job, status=dg.DagsterRunStatus.STARTED)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    assert recover_orphaned_runs(instance) == []
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
