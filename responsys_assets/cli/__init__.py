"""`responsys-assets`: run the pipeline once, start the sandbox, plan or release exports."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from responsys_assets.settings import PROJECT_ROOT, ConfigurationError, load_settings


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
        shutil.copyfile(PROJECT_ROOT / "dagster.yaml", yaml_path)
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


def _with_sandbox(settings, action):
    """In sandbox mode, start the sandbox for the duration unless one is already running."""
    from responsys_assets.config import load_config
    from responsys_assets.sandbox import Sandbox
    from responsys_assets.sandbox.connection import SandboxNotRunning, read_connection

    if not settings.is_sandbox:
        return action()
    try:
        read_connection(settings.sandbox_dir)
        return action()
    except SandboxNotRunning:
        pass
    print(f"using the embedded sandbox (starting it in {settings.sandbox_dir})")
    with Sandbox(settings.sandbox_dir, load_config(settings.config_path)):
        return action()


def cmd_run(args) -> int:
    if args.verbose:
        CONSOLE_LEVEL["value"] = "INFO"
    settings = load_settings()
    outcomes = _with_sandbox(settings, lambda: run_pipeline(retry_failed=args.retry_failed))
    files = [o for o in outcomes if o.part.startswith("file ")]
    loaded = sum(o.metadata.get("rows_loaded", 0) or 0 for o in files)
    rejected = sum(o.metadata.get("rows_rejected", 0) or 0 for o in files)
    print(f"mode: {settings.mode}")
    print(
        f"files ingested: {sum(o.ok for o in files)} of {len(files)} "
        f"({loaded:,} rows loaded, {rejected:,} rejected)"
    )
    for o in outcomes:
        if o.part.startswith("export ") and o.ok:
            m = o.metadata
            print(
                f"{o.part}: {m.get('records_added_or_updated', 0)} upserted, "
                f"{m.get('records_removed', 0)} removed, {m.get('records_triggered', 0)} "
                f"triggered, {m.get('api_calls', 0)} API calls"
            )
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"FAILED {o.part}: {o.reason}", file=sys.stderr)
    print("all parts succeeded" if not failed else f"{len(failed)} part(s) failed")
    return 1 if failed else 0


def cmd_sandbox(args) -> int:
    from responsys_assets.config import load_config
    from responsys_assets.sandbox import SampleData, Sandbox

    settings = load_settings()
    sample = SampleData.from_env()
    if args.contacts:
        sample.contacts = args.contacts
    sandbox = Sandbox(settings.sandbox_dir, load_config(settings.config_path), sample)
    conn = sandbox.start()
    if args.new_files:
        files = sandbox.drop_sample_files(seed=None)
        print(f"dropped {len(files)} new Connect files")
    print("# The embedded Responsys sandbox is running (Ctrl-C to stop).")
    print(f"# SFTP {conn.sftp_host}:{conn.sftp_port} serving {conn.sftp_root}")
    print(f"# REST API emulator {conn.api_endpoint}; what it received: {conn.api_state_path}")
    print("# With no RESPONSYS_* variable set the pipeline finds it by itself. To point a")
    print("# pipeline at it explicitly instead, export:")
    for name, value in sandbox.environment().items():
        print(f'export {name}="{value}"')
    sys.stdout.flush()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        sandbox.stop()
    return 0


def _require_warehouse(settings) -> None:
    if not settings.warehouse_path.exists():
        raise SystemExit(
            f"no warehouse at {settings.warehouse_path} yet: run `responsys-assets run` "
            "(or `make demo`) first"
        )


def cmd_plan(args) -> int:
    from responsys_assets.config import load_config
    from responsys_assets.defs.exports.handlers.registry import handler_for
    from responsys_assets.defs.exports.runner import run_export
    from responsys_assets.validation import validate_project
    from responsys_assets.warehouse import open_connection

    settings = load_settings()
    config = load_config(settings.config_path)
    validate_project(config)
    _require_warehouse(settings)
    conn = open_connection(settings.warehouse_path, read_only=True)
    try:
        for export in config.exports:
            if args.export and export.name not in args.export:
                continue
            report = run_export(
                conn,
                None,
                name=export.name,
                audience=export.audience,
                handler=handler_for(export),
                backfill=export.backfill,
                triggers=export.type == "campaign_trigger",
                dry_run=True,
            )
            print(
                f"{export.name} ({export.type}): {report.added} to add/update, "
                f"{report.removed} to remove, {report.triggered} to trigger, "
                f"{report.suppressed} suppressed"
            )
            if report.rejected:
                print(f"  {report.rejected} rejected: invalid destination_override value")
            for row in report.planned[: args.rows]:
                if row["action"] == "reject":
                    print(f"  reject   {row['contact_key']}: {row['reason']}")
                    continue
                where = ""
                if export.destination_override:  # the resolved destination, record by record
                    names = ", ".join(f"{k}={v}" for k, v in row["destination"].items())
                    where = f" -> {names}"
                before = row["before"] or {}
                diff = {
                    k: f"{before.get(k, '')!s} -> {v!s}"
                    for k, v in row["after"].items()
                    if str(before.get(k, "")) != str(v)
                }
                change = diff or "(no field change)"
                print(f"  {row['action']:8} {row['contact_key']}{where}: {change}")
    finally:
        conn.close()
    return 0


def cmd_release(args) -> int:
    from responsys_assets.defs.exports import ledger
    from responsys_assets.warehouse import open_connection

    settings = load_settings()
    _require_warehouse(settings)
    conn = open_connection(settings.warehouse_path)
    try:
        if not args.batch:
            for export, batch, records, error in ledger.unknown_batches(conn, args.export):
                print(f"{export} {batch} ({records} records): {error}")
            return 0
        if not (args.resend or args.mark_sent):
            print("say what to do with the batch: --resend or --mark-sent", file=sys.stderr)
            return 2
        if ledger.release(conn, args.export, args.batch, resend=args.resend):
            verdict = "will be resent" if args.resend else "accepted as sent"
            print(f"{args.export} {args.batch}: {verdict}")
            return 0
        print(f"{args.export} {args.batch}: no batch with an unknown outcome", file=sys.stderr)
        return 2
    finally:
        conn.close()


def cmd_report(args) -> int:
    from responsys_assets.cli.report import print_report

    settings = load_settings()
    _require_warehouse(settings)
    print_report(settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="responsys-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="one full pass of the production pipeline")
    run.add_argument("--retry-failed", action="store_true", help="also replay failed files")
    run.add_argument("-v", "--verbose", action="store_true", help="show Dagster's step logs")
    run.set_defaults(func=cmd_run)
    sandbox = sub.add_parser("sandbox", help="start the embedded Responsys sandbox")
    sandbox.add_argument("--contacts", type=int, default=None)
    sandbox.add_argument("--new-files", action="store_true", help="drop a new set of files")
    sandbox.set_defaults(func=cmd_sandbox)
    plan = sub.add_parser("plan", help="dry run: what each export would send, row by row")
    plan.add_argument("export", nargs="*")
    plan.add_argument("--rows", type=int, default=10)
    plan.set_defaults(func=cmd_plan)
    release = sub.add_parser("release", help="list or release batches with an unknown outcome")
    release.add_argument("export", nargs="?")
    release.add_argument("batch", nargs="?")
    group = release.add_mutually_exclusive_group()
    group.add_argument("--resend", action="store_true")
    group.add_argument("--mark-sent", action="store_true")
    release.set_defaults(func=cmd_release)
    report = sub.add_parser("report", help="what is in the warehouse and what was exported")
    report.set_defaults(func=cmd_report)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from responsys_assets.config import ConfigError

        if isinstance(exc, ConfigError):
            print(f"configuration error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
