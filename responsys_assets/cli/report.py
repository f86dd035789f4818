"""A short, human summary of the warehouse: what arrived, who is in which audience, what left."""

from __future__ import annotations

from responsys_assets.cli.pipeline import require_warehouse
from responsys_assets.settings import Settings, load_settings
from responsys_assets.warehouse import open_connection


def add_parser(sub) -> None:
    report = sub.add_parser("report", help="what is in the warehouse and what was exported")
    report.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    settings = load_settings()
    require_warehouse(settings)
    print_report(settings)
    return 0


def _table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    print(f"\n{title}")
    if not rows:
        print("  (none)")
        return
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)))


def print_report(settings: Settings) -> None:
    conn = open_connection(settings.warehouse, read_only=True)
    try:
        _table(
            "Files by status",
            ("status", "files", "rows", "rejected"),
            conn.execute(
                "select status, count(*), coalesce(sum(row_count), 0), "
                "coalesce(sum(rejected_count), 0) from responsys.ingested_files "
                "group by 1 order by 1"
            ).fetchall(),
        )
        _table(
            "Events by type",
            ("event_type", "events", "contacts"),
            conn.execute(
                "select event_type, count(*), count(distinct riid) from responsys.events "
                "group by 1 order by 2 desc"
            ).fetchall(),
        )
        _table(
            "Audiences",
            ("audience", "members", "suppressed"),
            conn.execute(
                "select audience, count(*), count(*) filter (where suppressed) "
                "from audiences.memberships group by 1 order by 1"
            ).fetchall(),
        )
        _table(
            "Exports",
            ("export", "batches", "records", "api_calls", "unknown", "rejected"),
            conn.execute(
                """
                select l.export, count(*) filter (where not l.batch_id like 'nocall-%'),
                       coalesce(sum(l.records) filter (where not l.batch_id like 'nocall-%'), 0),
                       coalesce(sum(l.api_calls), 0),
                       count(*) filter (where l.outcome = 'unknown'),
                       (select count(*) from exports.rejected_records r where r.export = l.export)
                from exports.ledger l group by 1 order by 1
                """
            ).fetchall(),
        )
    finally:
        conn.close()
