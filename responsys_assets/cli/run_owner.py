"""Runs the CLI executes in its own process, and the ones a killed process left behind.

A process killed mid-run (SIGKILL, out of memory, a lost machine) leaves its Dagster run STARTED
and keeps the `duckdb_writer` pool slot that run held, so the next run waits for that slot
forever. No daemon watches an in-process run, so each CLI run is tagged with the identity of its
process, and the next CLI run marks a run whose process is gone as failed and frees its slots."""

from __future__ import annotations

import os
import socket
from pathlib import Path

OWNER_TAG = "responsys/process"
# A bound on what one start-up looks at; a healthy instance has at most a handful in progress.
MAX_RUNS_INSPECTED = 1000


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a process: with the PID it names one process, even after the
    PID is reused (inside a container the CLI is often PID 1 every time)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after it are plain.
    return stat.rsplit(")", 1)[1].split()[19]


def process_identity(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def owner_tags() -> dict[str, str]:
    return {OWNER_TAG: process_identity()}


def is_alive(identity: str) -> bool:
    """Whether the process named by `identity` still runs. A process on another host cannot be
    checked from here, so it counts as alive: never fail a run that may still be working."""
    try:
        host, pid_text, started = identity.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    return started == "?" or _start_time(pid) in (started, None)


def recover_orphaned_runs(instance) -> list[str]:
    """Fail every unfinished CLI run whose process is gone and free its pool slots.

    Returns the run ids it recovered."""
    import dagster as dg

    unfinished = [
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
        dg.DagsterRunStatus.CANCELING,
    ]
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=unfinished), limit=MAX_RUNS_INSPECTED
    )
    recovered = []
    for record in records:
        run = record.dagster_run
        owner = run.tags.get(OWNER_TAG)
        if owner is None or is_alive(owner):
            continue
        pid = owner.rsplit(":", 2)[1]
        instance.report_run_failed(
            run,
            message=(
                f"The process that ran this run (pid {pid}) ended before the run did; "
                "a later `responsys-assets run` marked it failed and freed its pool slots."
            ),
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append(run.run_id)
    return recovered
