"""Checks across files: a feed whose files stopped arriving is a silent data loss."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from responsys_assets.ingest.assets import EVENTS
from responsys_assets.ingest.feeds import UnknownFileName, parse_file_name
from responsys_assets.resources.warehouse import WRITER_POOL, WarehouseResource

FEEDS_STILL_ARRIVING = dg.AssetCheckKey(EVENTS, "feeds_still_arriving")
WARN_AFTER = timedelta(hours=7)
FAIL_AFTER = timedelta(hours=13)


def stale_feeds(files: list[tuple[str, datetime]], now: datetime) -> dict[str, timedelta]:
    """Feeds whose newest file is older than WARN_AFTER, by the stamp in the file name."""
    newest: dict[str, datetime] = {}
    for name, ingested_at in files:
        try:
            parsed = parse_file_name(name)
        except UnknownFileName:
            continue
        if parsed.feed is None:
            continue
        stamp = parsed.stamp or ingested_at
        newest[parsed.feed] = max(newest.get(parsed.feed, stamp), stamp)
    return {feed: now - at for feed, at in newest.items() if now - at > WARN_AFTER}


def build_ingest_checks() -> list:
    @dg.asset_check(
        asset=EVENTS,
        name="feeds_still_arriving",
        pool=WRITER_POOL,
        description="Warns after ~7 h and fails after ~13 h without a new file for a feed.",
    )
    def feeds_still_arriving(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as conn:
            rows = conn.execute(
                "select file_name, ingested_at from responsys.ingested_files "
                "where status = 'loaded'"
            ).fetchall()
        now = datetime.now(UTC).replace(tzinfo=None)
        late = stale_feeds(rows, now)
        failing = {f: d for f, d in late.items() if d > FAIL_AFTER}
        return dg.AssetCheckResult(
            passed=not late,
            severity=dg.AssetCheckSeverity.ERROR if failing else dg.AssetCheckSeverity.WARN,
            metadata={
                "late_feeds_hours": {
                    f: round(d.total_seconds() / 3600, 1) for f, d in late.items()
                },
                "what_to_do": "check the Connect export job in Responsys for these feeds",
            },
        )

    return [feeds_still_arriving]
