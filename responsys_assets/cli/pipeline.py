"""One full pass of the pipeline in this process: the Dagster instance, then every job in order.

`responsys-assets run` prints what this returns; tests and the demo call it too.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from responsys_assets.settings import (
    PROJECT_ROOT,
    FileWarehouse,
    Settings,
    load_settings,
    shipped_file,
)


@dataclass
class PartOutcome:
    part: str
    ok: bool
    reason: str = ""
    metadata: dict = field(default_factory=dict)


def ensure_dagster_home() -> Path:
    """Use DAGSTER_HOME, or the project's .dagster_home with the repo's dagster.yaml."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(PROJECT_ROOT / ".dagster_home")
        os.environ["DAGSTER_HOME"] = home
    path = Path(home)
    path.mkdir(parents=True, exist_ok=True)
    yaml_path = path / "dagster.yaml"
    if not yaml_path.exists():
        shutil.copyfile(shipped_file("dagster.yaml"), yaml_path)
    return path


def _failure_reason(result) -> str:
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.event_specific_data.error
            cause = error
            while cause.cause is not None and "dagster" in (cause.cls_name or "").lower():
                cause = cause.cause
            message = (cause.message or error.message).strip().splitlines()[0]
            return message
    return "run failed"


def _materialization_metadata(result, asset_key) -> dict:
    out = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key == asset_key:
            out = {k: v.value for k, v in mat.metadata.items()}
    return out


CONSOLE_LEVEL = {"value": "WARNING"}


def _execute(job, instance, tags=None, **kwargs):
    """Run a job in this process; the run and its events are recorded in the instance, tagged
    with this process so a later run can tell if it was killed midway."""
    from responsys_assets.cli.run_owner import owner_tags

    run_config = {"loggers": {"console": {"config": {"log_level": CONSOLE_LEVEL["value"]}}}}
    return job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config=run_config,
        tags={**(tags or {}), **owner_tags()},
        **kwargs,
    )


def run_pipeline(*, retry_failed: bool = False, echo=print) -> list[PartOutcome]:
    """One full pass: sensor -> every new file -> audiences -> every export."""
    import dagster as dg

    from responsys_assets.cli.run_owner import recover_orphaned_runs
    from responsys_assets.definitions import build_definitions
    from responsys_assets.defs.ingest.partitions import responsys_files
    from responsys_assets.keys import AUDIENCES_JOB, EVENTS, INGEST_JOB, export_job, export_key

    settings = load_settings()
    defs = build_definitions(settings)
    ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    outcomes: list[PartOutcome] = []

    # 0. Runs a killed earlier run left behind would hold the DuckDB pool slot for ever.
    for run_id in recover_orphaned_runs(instance):
        echo(f"run {run_id} was left unfinished by a process that is gone: marked failed")

    # 1. The sensor, exactly as the daemon evaluates it, with a cursor kept in the instance.
    cursor_key = "responsys_assets/cli/sftp_file_sensor"
    cursor = instance.run_storage.get_cursor_values({cursor_key}).get(cursor_key)
    sensor = defs.resolve_sensor_def("sftp_file_sensor")
    resources = defs.resources
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"sftp": resources["sftp"]}
    )
    try:
        result = sensor(context)
    except Exception as exc:  # noqa: BLE001 - reported as a failed part, others go on
        outcomes.append(PartOutcome("sftp listing", False, f"{type(exc).__name__}: {exc}"))
        result = None
    requests = []
    if result is not None:
        for request in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(responsys_files.name, list(request.partition_keys))
        requests = list(result.run_requests or [])
    if retry_failed:
        requested = {r.partition_key for r in requests}
        for key in instance.get_dynamic_partitions(responsys_files.name):
            if key in requested:
                continue
            status = instance.get_status_by_partition(EVENTS, [key], responsys_files)
            if status and str(status.get(key)).endswith("FAILED"):
                requests.append(dg.RunRequest(partition_key=key))
    echo(f"sensor: {len(requests)} file(s) to ingest")

    # 2. One run per file; a bad file never blocks the others.
    ingest_job = defs.resolve_job_def(INGEST_JOB)
    for request in requests:
        run = _execute(ingest_job, instance, partition_key=request.partition_key, tags=request.tags)
        meta = _materialization_metadata(run, EVENTS)
        outcomes.append(
            PartOutcome(
                f"file {request.partition_key}",
                run.success,
                "" if run.success else _failure_reason(run),
                meta,
            )
        )

    # The cursor is saved only now: a run killed mid-ingest requests the rest again next time
    # (reloading a file replaces it, so nothing is duplicated).
    if result is not None:
        instance.run_storage.set_cursor_values({cursor_key: result.cursor or ""})

    # 3. Profiles, scores and audiences.
    audiences = _execute(defs.resolve_job_def(AUDIENCES_JOB), instance)
    outcomes.append(
        PartOutcome(
            "audiences",
            audiences.success,
            "" if audiences.success else _failure_reason(audiences),
        )
    )

    # 4. Every export, each on its own.
    from responsys_assets.config import load_config

    config = load_config(settings.config_path)
    for export in config.exports:
        if not export.enabled:
            continue
        if not audiences.success:
            outcomes.append(
                PartOutcome(f"export {export.name}", False, "skipped: audiences failed")
            )
            continue
        run = _execute(defs.resolve_job_def(export_job(export.name)), instance)
        outcomes.append(
            PartOutcome(
                f"export {export.name}",
                run.success,
                "" if run.success else _failure_reason(run),
                _materialization_metadata(run, export_key(export.name)),
            )
        )
    return outcomes


def require_warehouse(settings: Settings) -> None:
    """Commands that read the warehouse need a run to have written it first."""
    warehouse = settings.warehouse
    if isinstance(warehouse, FileWarehouse) and not warehouse.path.exists():
        raise SystemExit(
            f"no warehouse at {warehouse.path} yet: run `responsys-assets run` "
            "(or `make demo`) first"
        )
