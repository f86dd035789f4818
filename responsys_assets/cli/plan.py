"""`responsys-assets plan [EXPORT]`: what each export would send, row by row; writes nothing."""

from __future__ import annotations

from responsys_assets.cli.pipeline import require_warehouse
from responsys_assets.settings import load_settings


def add_parser(sub) -> None:
    plan = sub.add_parser("plan", help="dry run: what each export would send, row by row")
    plan.add_argument("export", nargs="*")
    plan.add_argument("--rows", type=int, default=10)
    plan.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    from responsys_assets.config import load_config
    from responsys_assets.defs.exports.handlers.registry import handler_for
    from responsys_assets.defs.exports.runner import run_export
    from responsys_assets.validation import validate_project
    from responsys_assets.warehouse import open_connection

    settings = load_settings()
    config = load_config(settings.config_path)
    validate_project(config)
    require_warehouse(settings)
    conn = open_connection(settings.warehouse, read_only=True)
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
