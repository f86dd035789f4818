"""The audience assets materialised with Dagster: the first build is full, the next incremental."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from responsys_assets.config import ProjectConfig
from responsys_assets.defs.audiences.assets import build_audience_assets
from responsys_assets.defs.audiences.rules import load_ready_made
from responsys_assets.keys import MEMBERSHIPS, PROFILES
from responsys_assets.warehouse import apply_migrations
from responsys_assets.warehouse.resource import WarehouseResource


def _load_file(path: Path, name: str, riids: range, at: datetime) -> None:
    with duckdb.connect(str(path)) as conn:
        apply_migrations(conn)
        conn.execute(
            "insert into responsys.events (event_type, riid, email, event_captured_at,"
            " source_file, source_line) select 'CLICK', r, 'p' || r || '@example.com', ?, ?, r"
            " from range(?, ?) as t(r)",
            [at, name, riids.start, riids.stop],
        )
        conn.execute(
            "insert into responsys.ingested_files (file_name, status, row_count, ingested_at)"
            " values (?, 'loaded', ?, now())",
            [name, len(riids)],
        )


def _materialize(path: Path) -> dict:
    result = dg.materialize(
        build_audience_assets(ProjectConfig(), load_ready_made()),
        resources={
            "warehouse": WarehouseResource(location=str(path), landing_dir=str(path.parent))
        },
    )
    assert result.success
    return {
        event.asset_key: event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }


def test_profiles_build_in_full_then_incrementally(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    now = datetime.now(UTC).replace(tzinfo=None)
    _load_file(path, "1_CLICK_a.txt", range(1, 51), now - timedelta(days=2))
    first = _materialize(path)
    assert first[PROFILES]["build_mode"].value == "full"
    assert first[PROFILES]["build_reason"].value == "no previous build"
    assert first[MEMBERSHIPS]["size/recent_clickers"].value == 50

    _load_file(path, "1_CLICK_b.txt", range(45, 61), now - timedelta(hours=1))
    second = _materialize(path)
    assert second[PROFILES]["build_mode"].value == "incremental"
    assert second[PROFILES]["build_reason"].value.startswith("1 new file(s) since ")
    assert second[PROFILES]["rebuilt_profiles"].value == 16
    assert second[PROFILES]["profiles"].value == 60
    assert second[MEMBERSHIPS]["size/recent_clickers"].value == 60
    assert second[MEMBERSHIPS]["entered"].value >= 10
