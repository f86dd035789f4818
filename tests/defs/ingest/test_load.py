"""Loading one file: one transaction, a re-run replaces, a contract failure loads nothing."""

from pathlib import Path

import pytest

from responsys_assets.defs.ingest.load import FileRecord, load_file, loaded_sha256, record_file
from responsys_assets.defs.ingest.parse import FileContractError
from responsys_assets.warehouse import apply_migrations, open_connection

HEADER = (
    "EVENT_TYPE_ID,ACCOUNT_ID,LIST_ID,RIID,CUSTOMER_ID,EVENT_CAPTURED_DT,EVENT_STORED_DT,"
    "CAMPAIGN_ID,LAUNCH_ID,EMAIL_FORMAT,MY_CUSTOM\n"
)
ROWS = [
    "4,10001,4200,1000001,C1,03-Jan-2026 13:05:32,03-Jan-2026 13:06:00,11,21,H,gold\n",
    "4,10001,4200,abc,C2,03-Jan-2026 13:05:33,03-Jan-2026 13:06:00,11,21,H,\n",
    "4,10001,4200,1000003,C3,31-Foo-2026 13:05:34,03-Jan-2026 13:06:00,11,21,T,silver\n",
    "4,10001,4200,1000004,C4,04-Jan-2026 08:00:00,04-Jan-2026 08:00:10,12,22,H,\n",
]


@pytest.fixture
def conn(warehouse_location):
    db = open_connection(warehouse_location)
    apply_migrations(db)
    yield db
    db.close()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def record(path: Path, name="10001_OPEN_20260104_000000.txt") -> FileRecord:
    return FileRecord(name, "OPEN", "sha-1", path.stat().st_size, False, str(path))


def test_good_rows_load_and_bad_rows_are_kept_with_reasons(conn, tmp_path):
    path = write(tmp_path / "open.txt", HEADER + "".join(ROWS))
    result = load_file(conn, path, record(path))
    assert (result.data_rows, result.loaded, result.rejected) == (4, 2, 2)
    rows = conn.execute(
        "select riid, source_line, event_type, event_captured_at::varchar,"
        " attributes->>'MY_CUSTOM' from responsys.events order by source_line"
    ).fetchall()
    assert rows == [
        (1000001, 2, "OPEN", "2026-01-03 13:05:32", "gold"),
        (1000004, 5, "OPEN", "2026-01-04 08:00:00", None),
    ]
    rejected = conn.execute(
        "select source_line, reason from responsys.rejected_rows order by source_line"
    ).fetchall()
    assert [line for line, _ in rejected] == [3, 4]
    assert "RIID" in rejected[0][1] and "EVENT_CAPTURED_DT" in rejected[1][1]
    status = conn.execute(
        "select status, row_count, rejected_count from responsys.ingested_files"
    ).fetchone()
    assert status == ("loaded", 2, 2)
    assert loaded_sha256(conn, "10001_OPEN_20260104_000000.txt") == "sha-1"


def test_rerun_replaces_instead_of_duplicating(conn, tmp_path):
    path = write(tmp_path / "open.txt", HEADER + "".join(ROWS))
    load_file(conn, path, record(path))
    load_file(conn, path, record(path))
    counts = conn.execute(
        "select (select count(*) from responsys.events),"
        " (select count(*) from responsys.rejected_rows),"
        " (select count(*) from responsys.ingested_files)"
    ).fetchone()
    assert counts == (2, 2, 1)


def test_missing_required_column_loads_nothing_and_keeps_earlier_load(conn, tmp_path):
    good = write(tmp_path / "good.txt", HEADER + "".join(ROWS))
    load_file(conn, good, record(good))
    bad = write(tmp_path / "bad.txt", HEADER.replace("RIID,", "RIIDX,") + "".join(ROWS))
    with pytest.raises(FileContractError) as err:
        load_file(conn, bad, record(bad))
    assert "RIID" in str(err.value) and "10001_OPEN_20260104_000000.txt" in str(err.value)
    assert conn.execute("select count(*) from responsys.events").fetchone()[0] == 2


def test_failure_midway_rolls_back_the_whole_file(conn, tmp_path):
    # A ragged-free file whose second batch is unreadable (not UTF-8) after a good first batch.
    text = HEADER + "".join(ROWS[:1] * 50) + "4,10001,4200,5,C,03-Jan-2026 13:05:32,,1,1,H,\xff\n"
    path = tmp_path / "mixed.txt"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(FileContractError):
        load_file(conn, path, record(path), batch_rows=10)
    assert conn.execute("select count(*) from responsys.events").fetchone()[0] == 0
    assert conn.execute("select count(*) from responsys.ingested_files").fetchone()[0] == 0


def test_failed_status_is_recorded_separately(conn, tmp_path):
    path = write(tmp_path / "x.txt", HEADER)
    record_file(conn, record(path), "failed", error="corrupt PGP data")
    assert conn.execute("select status, error from responsys.ingested_files").fetchone() == (
        "failed",
        "corrupt PGP data",
    )
