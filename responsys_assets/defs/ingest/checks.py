"""Checks across files: a feed whose files stopped arriving is a silent data loss."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from responsys_assets.config import IngestConfig
from responsys_assets.keys import (
    EVENTS,
    FEED_FAIL_AFTER,
    FEED_WARN_AFTER,
    FEEDS_STILL_ARRIVING,
    FILE_POOLS,
    Pools,
    hours,
)
from responsys_assets.lib.feeds import CONTACTS, UnknownFileName, parse_file_name
from responsys_assets.warehouse.resource import WarehouseResource


def stale_feeds(
    files: list[tuple[str, datetime]], now: datetime, *, contacts_token: str = CONTACTS
) -> dict[str, timedelta]:
    """Feeds whose newest file is older than FEED_WARN_AFTER, by the stamp in the file name.

    `contacts_token` is the config's `ingest.contacts_feed`, as for ingest itself: a customised
    contacts feed is checked under the name CONTACTS.
    """
    newest: dict[str, datetime] = {}
    for name, ingested_at in files:
        try:
            parsed = parse_file_name(name, contacts_token=contacts_token)
        except UnknownFileName:
            continue
        if parsed.feed is None:
            continue
        stamp = parsed.stamp or ingested_at
        newest[parsed.feed] = max(newest.get(parsed.feed, stamp), stamp)
    return {feed: now - at for feed, at in newest.items() if now - at > FEED_WARN_AFTER}


def build_ingest_checks(ingest: IngestConfig, pools: Pools = FILE_POOLS) -> list:
    @dg.asset_check(
        asset=EVENTS,
        name=FEEDS_STILL_ARRIVING.name,
        pool=pools.checks,
        description=(
            f"Warns after ~{hours(FEED_WARN_AFTER)} h and fails after ~{hours(FEED_FAIL_AFTER)} h "
            "without a new file for a feed."
        ),
    )
    def feeds_still_arriving(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as conn:
            rows = conn.execute(
                "select file_name, ingested_at from responsys.ingested_files "
                "where status = 'loaded'"
            ).fetchall()
        now = datetime.now(UTC).replace(tzinfo=None)
        late = stale_feeds(rows, now, contacts_token=ingest.contacts_feed)
        failing = {f: d for f, d in late.items() if d > FEED_FAIL_AFTER}
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
