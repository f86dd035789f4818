"""The feed-arrival check: a feed whose files stopped arriving fails, whatever its token."""

from datetime import datetime, timedelta

import dagster as dg

from responsys_assets.config import IngestConfig
from responsys_assets.defs.ingest.checks import build_ingest_checks, stale_feeds
from responsys_assets.keys import FEEDS_STILL_ARRIVING
from responsys_assets.warehouse.resource import WarehouseResource

NOW = datetime(2026, 1, 3, 20, 0)
OLD_CONTACTS = "1234_PROFILE_EXPORT_20260103_000000.txt"  # 20 h before NOW
FRESH_CLICKS = "1234_CLICK_20260103_180000.txt"  # 2 h before NOW


def test_a_customised_contacts_feed_is_checked_under_its_own_token():
    files = [(OLD_CONTACTS, NOW), (FRESH_CLICKS, NOW)]
    late = stale_feeds(files, NOW, contacts_token="PROFILE_EXPORT")
    assert late == {"CONTACTS": timedelta(hours=20)}


def test_the_default_contacts_token_does_not_claim_other_files():
    assert stale_feeds([(OLD_CONTACTS, NOW)], NOW) == {}


def test_the_check_reads_the_configured_contacts_feed(tmp_path):
    """End to end: a contacts file under a custom token, landed long ago, fails the check."""
    warehouse = WarehouseResource(
        location=str(tmp_path / "warehouse.duckdb"), landing_dir=str(tmp_path / "landing")
    )
    stamp = datetime.utcnow().replace(microsecond=0) - timedelta(days=2)
    name = f"1234_PROFILE_EXPORT_{stamp:%Y%m%d_%H%M%S}.txt"
    with warehouse.connect() as conn:
        conn.execute(
            "insert into responsys.ingested_files (file_name, feed, status, ingested_at) "
            "values (?, 'CONTACTS', 'loaded', ?)",
            [name, stamp],
        )
    checks = build_ingest_checks(IngestConfig(contacts_feed="PROFILE_EXPORT"))
    result = dg.materialize(
        [dg.AssetSpec(FEEDS_STILL_ARRIVING.asset_key), *checks],
        resources={"warehouse": warehouse},
        selection=dg.AssetSelection.checks(FEEDS_STILL_ARRIVING),
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    late = evaluation.metadata["late_feeds_hours"].value
    assert set(late) == {"CONTACTS"} and late["CONTACTS"] >= 47
