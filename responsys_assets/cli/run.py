"""`responsys-assets run`: one full pass (SFTP sensor, every new file, audiences, every export)."""

from __future__ import annotations

import sys

from responsys_assets.cli.pipeline import CONSOLE_LEVEL, run_pipeline
from responsys_assets.settings import load_settings


def add_parser(sub) -> None:
    run = sub.add_parser("run", help="one full pass of the production pipeline")
    run.add_argument("--retry-failed", action="store_true", help="also replay failed files")
    run.add_argument("-v", "--verbose", action="store_true", help="show Dagster's step logs")
    run.set_defaults(func=cmd_run)


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
