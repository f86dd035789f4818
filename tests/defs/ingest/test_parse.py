"""Parsing Connect files: layouts, delimiters, bad rows, line numbers, time zones, contracts."""

import json
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from responsys_assets.defs.ingest.contracts import column_order
from responsys_assets.defs.ingest.parse import (
    FileContractError,
    ParsedBatch,
    parse_event_file,
    read_header,
)
from responsys_assets.lib.feeds import LAYOUTS, parse_file_name
from responsys_assets.sandbox.sample_data import generate_event_files

ROOT = Path(__file__).resolve().parents[3]
END = datetime(2026, 3, 1)
HEADER = "EVENT_TYPE_ID,ACCOUNT_ID,LIST_ID,RIID,CUSTOMER_ID,EVENT_CAPTURED_DT,EVENT_STORED_DT,CAMPAIGN_ID,LAUNCH_ID,EMAIL_FORMAT,OFFER_NAME,OFFER_NUMBER,OFFER_CATEGORY,OFFER_URL"  # noqa: E501


def click_row(riid: str = "1001", captured: str = "03-Jan-2026 13:05:32", **kw: str) -> str:
    values = {
        "EVENT_TYPE_ID": "5",
        "ACCOUNT_ID": "10001",
        "LIST_ID": "4200",
        "RIID": riid,
        "CUSTOMER_ID": "C1",
        "EVENT_CAPTURED_DT": captured,
        "EVENT_STORED_DT": "03-Jan-2026 13:05:40",
        "CAMPAIGN_ID": "3000",
        "LAUNCH_ID": "70000",
        "EMAIL_FORMAT": "H",
        "OFFER_NAME": "Sale",
        "OFFER_NUMBER": "1",
        "OFFER_CATEGORY": "SALE",
        "OFFER_URL": "https://x.example.com/a",
    }
    values.update(kw)
    return ",".join(values[c] for c in HEADER.split(","))


def write(tmp_path: Path, text: str | bytes, name: str = "10001_CLICK_20260103_130532.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def parse_all(path: Path, feed: str = "CLICK", **kw) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    batches: list[ParsedBatch] = list(
        parse_event_file(path, source_file=path.name, feed=feed, **kw)
    )
    for b in batches:
        assert b.data_rows == b.events.height + b.rejected.height
    target = LAYOUTS[feed].target
    events = pl.concat([b.events for b in batches]) if batches else pl.DataFrame()
    rejected = pl.concat([b.rejected for b in batches]) if batches else pl.DataFrame()
    assert not batches or events.columns == column_order(target)
    return events, rejected, sum(b.data_rows for b in batches)


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("sample")
    feeds = (
        "SENT", "OPEN", "CLICK", "BOUNCE", "OPT_IN", "OPT_OUT", "CONVERT", "COMPLAINT",
        "SKIPPED", "FAIL", "PROGRAM", "LAUNCH_STATE", "CONTACTS", "SMS_SENT", "PUSH_OPEN",
    )  # fmt: skip
    return generate_event_files(out, contacts=300, days=4, end=END, seed=3, feeds=feeds)


def test_every_generated_feed_parses_cleanly_and_loads_into_duckdb(
    sample_files: list[Path], tmp_path: Path
) -> None:
    conn = duckdb.connect(str(tmp_path / "w.db"))
    conn.execute((ROOT / "responsys_assets/warehouse/migrations/001_initial.sql").read_text())
    seen = set()
    for path in sample_files:
        feed = parse_file_name(path.name).feed
        assert feed is not None
        events, rejected, rows = parse_all(path, feed)
        assert rejected.height == 0, rejected.head(3)
        assert rows == path.read_bytes().count(b"\n") - 1
        assert events["source_line"].to_list() == list(range(2, rows + 2))
        table = {"events": "responsys.events", "launch_states": "responsys.launch_states"}.get(
            LAYOUTS[feed].target, "responsys.contacts"
        )
        conn.execute(f"insert into {table} select * from events")
        seen.add(feed)
    assert len(seen) == 15
    counts = dict(
        conn.execute("select event_type, count(*) from responsys.events group by 1").fetchall()
    )
    assert counts["SENT"] > counts["OPEN"] > counts["CLICK"] > counts["CONVERT"] > 0
    assert counts["COMPLAINT"] >= 0 and counts["SMS_SENT"] == counts["SENT"]
    # the attributes column is real JSON that DuckDB can query
    offer = conn.execute(
        "select attributes->>'OFFER_URL' from responsys.events where event_type = 'CLICK' limit 1"
    ).fetchone()[0]
    assert offer.startswith("https://")
    statuses = conn.execute(
        "select distinct email_permission_status from responsys.contacts"
    ).fetchall()
    assert {s for (s,) in statuses} <= {"I", "O"}
    names = conn.execute(
        "select count(distinct campaign_name) from responsys.launch_states"
    ).fetchone()
    assert names[0] >= 2


def test_typed_values_and_attributes(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "\n" + click_row() + "\n")
    events, _, _ = parse_all(path)
    row = events.row(0, named=True)
    assert row["event_type"] == "CLICK"
    assert row["riid"] == 1001 and row["account_id"] == 10001 and row["launch_id"] == 70000
    assert row["event_captured_at"] == datetime(2026, 1, 3, 13, 5, 32)
    assert row["email"] is None
    assert json.loads(row["attributes"]) == {
        "EVENT_TYPE_ID": "5",
        "EMAIL_FORMAT": "H",
        "OFFER_NAME": "Sale",
        "OFFER_NUMBER": "1",
        "OFFER_CATEGORY": "SALE",
        "OFFER_URL": "https://x.example.com/a",
    }
    assert events.schema["event_captured_at"] == pl.Datetime("us")
    assert events.schema["riid"] == pl.Int64


def test_reordered_columns_and_custom_columns_kept_in_attributes(tmp_path: Path) -> None:
    text = (
        "OFFER_URL,RIID,EVENT_CAPTURED_DT,LAUNCH_ID,MY_SEGMENT,LOYALTY_TIER\n"
        'https://a.example.com,7,03-Jan-2026 13:05:32,9,"gold, ""vip""",\n'
        "https://b.example.com,8,03-Jan-2026 13:05:33,9,back\\slash,T2\n"
    )
    events, rejected, _ = parse_all(write(tmp_path, text))
    assert rejected.height == 0
    assert events["riid"].to_list() == [7, 8]
    first, second = (json.loads(a) for a in events["attributes"])
    # empty values are left out; quotes and backslashes survive JSON encoding
    assert first == {"OFFER_URL": "https://a.example.com", "MY_SEGMENT": 'gold, "vip"'}
    assert second == {
        "OFFER_URL": "https://b.example.com",
        "MY_SEGMENT": "back\\slash",
        "LOYALTY_TIER": "T2",
    }
    assert events["customer_id"].null_count() == 2


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("configured", [True, False])
def test_all_four_delimiters(tmp_path: Path, delimiter: str, configured: bool) -> None:
    lines = [HEADER, click_row("1"), click_row("2", OFFER_NAME='"A, B; C | D"')]
    text = "\n".join(line.replace(",", delimiter) for line in lines) + "\n"
    text = text.replace(delimiter.join(["A", " B"]), "A, B")  # keep the quoted value intact
    path = write(tmp_path, text)
    assert read_header(path).delimiter == delimiter
    events, rejected, _ = parse_all(path, delimiter=delimiter if configured else None)
    assert rejected.height == 0
    assert events["riid"].to_list() == [1, 2]


def test_crlf_and_bom(tmp_path: Path) -> None:
    body = HEADER + "\r\n" + click_row("1") + "\r\n" + click_row("2", OFFER_URL="") + "\r\n"
    path = write(tmp_path, b"\xef\xbb\xbf" + body.encode())
    header = read_header(path)
    assert header.has_bom and header.columns[0] == "EVENT_TYPE_ID"
    events, rejected, _ = parse_all(path)
    assert rejected.height == 0
    assert events["source_line"].to_list() == [2, 3]
    attributes = [json.loads(a) for a in events["attributes"]]
    assert attributes[0]["OFFER_URL"] == "https://x.example.com/a"  # no trailing \r
    assert "OFFER_URL" not in attributes[1]


def test_bad_rows_are_rejected_with_line_and_reason_while_the_rest_loads(tmp_path: Path) -> None:
    rows = [
        click_row("1"),
        click_row("abc"),  # line 3
        click_row("2", captured="32-Foo-2026 99:00:00"),  # line 4
        click_row(""),  # line 5
        "5,10001,4200,3,C3",  # line 6: too few fields
        click_row("4") + ",extra",  # line 7: too many fields
        click_row("5", LAUNCH_ID="7.5"),  # line 8
        click_row("6"),
    ]
    events, rejected, data_rows = parse_all(write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n"))
    assert data_rows == 8
    assert events["riid"].to_list() == [1, 6]
    assert events["source_line"].to_list() == [2, 9]
    reasons = dict(zip(rejected["source_line"], rejected["reason"], strict=True))
    assert reasons[3] == "RIID: 'abc' is not an integer"
    assert reasons[4] == (
        "EVENT_CAPTURED_DT: '32-Foo-2026 99:00:00' is not a date like 03-Jan-2026 13:05:32"
    )
    assert reasons[5] == "RIID: missing required value"
    assert reasons[6] == "row has 5 fields, the header has 14"
    assert reasons[7] == "row has 15 fields, the header has 14"
    assert reasons[8] == "LAUNCH_ID: '7.5' is not an integer"
    raw = dict(zip(rejected["source_line"], rejected["raw"], strict=True))
    assert raw[3] == click_row("abc")
    assert set(rejected["source_file"]) == {"10001_CLICK_20260103_130532.txt"}


def test_contract_bounds_reject_rows_with_reasons(tmp_path: Path) -> None:
    rows = [
        click_row("1"),
        click_row("0"),
        click_row("2", captured="01-Jan-1999 00:00:00"),
        click_row("3", captured="01-Jan-2199 00:00:00"),
        click_row("-4"),
    ]
    events, rejected, _ = parse_all(write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n"))
    assert events["riid"].to_list() == [1]
    reasons = dict(zip(rejected["source_line"], rejected["reason"], strict=True))
    assert set(reasons) == {3, 4, 5, 6}
    assert reasons[3].startswith("RIID: '0'")
    assert (
        reasons[4].startswith("EVENT_CAPTURED_DT: '01-Jan-1999 00:00:00' is outside")
        and "range" in reasons[4]
    )
    assert "range" in reasons[5]
    assert reasons[6].startswith("RIID: '-4'")


def test_missing_required_column_fails_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "RIID,CAMPAIGN_ID\n1,2\n")
    with pytest.raises(FileContractError) as err:
        parse_all(path)
    message = str(err.value)
    assert "EVENT_CAPTURED_DT" in message and path.name in message
    assert "columns found: RIID, CAMPAIGN_ID" in message


def test_wrong_delimiter_configured_gives_a_helpful_error(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER.replace(",", ";") + "\n" + click_row().replace(",", ";") + "\n")
    with pytest.raises(FileContractError) as err:
        parse_all(path, delimiter=",")
    message = str(err.value)
    assert "ingest.delimiter" in message and "semicolon" in message and "comma" in message


def test_header_without_any_delimiter_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileContractError, match="could not find the delimiter"):
        read_header(write(tmp_path, "RIID EVENT_CAPTURED_DT\n1 x\n"))


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    with pytest.raises(FileContractError, match="empty"):
        parse_all(write(tmp_path, ""))
    with pytest.raises(FileContractError, match="empty"):
        parse_all(write(tmp_path, b"\xef\xbb\xbf"))
    events, rejected, rows = parse_all(write(tmp_path, HEADER + "\n"))
    assert rows == 0
    assert parse_all(write(tmp_path, HEADER))[2] == 0


def test_not_utf8_fails_the_file_naming_the_line(tmp_path: Path) -> None:
    body = HEADER + "\n" + click_row("1") + "\n" + click_row("2", OFFER_NAME="caf\xe9") + "\n"
    path = write(tmp_path, body.encode("latin-1"))
    with pytest.raises(FileContractError, match="line 3 is not UTF-8"):
        parse_all(path)
    with pytest.raises(FileContractError, match="not UTF-8"):
        read_header(write(tmp_path, "RI\xc9D,X\n".encode("latin-1")))


def test_quoted_line_break_keeps_later_line_numbers_right(tmp_path: Path) -> None:
    rows = [
        click_row("1"),
        click_row("2", OFFER_NAME='"two\nline name"'),  # lines 3-4
        click_row("3"),  # line 5
        click_row("x"),  # line 6
    ]
    events, rejected, _ = parse_all(write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n"))
    assert events["source_line"].to_list() == [2, 3, 5]
    assert json.loads(events["attributes"][1])["OFFER_NAME"] == "two\nline name"
    assert rejected["source_line"].to_list() == [6]


def test_small_batches_give_the_same_result_as_one_batch(tmp_path: Path) -> None:
    rows = [click_row(str(i)) for i in range(1, 400)]
    rows[150] = click_row("bad")
    rows[200] = click_row("9", OFFER_NAME='"quoted\nbreak"')
    path = write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n")
    batches = list(parse_event_file(path, source_file="f", feed="CLICK", batch_rows=20))
    assert len(batches) > 5
    one = list(parse_event_file(path, source_file="f", feed="CLICK"))
    assert len(one) == 1
    assert pl.concat([b.events for b in batches]).equals(one[0].events)
    assert pl.concat([b.rejected for b in batches]).equals(one[0].rejected)
    assert one[0].rejected["source_line"].to_list() == [152]
    assert one[0].events["source_line"][-1] == 401


def test_timezone_conversion_across_dst(tmp_path: Path) -> None:
    rows = [
        click_row("1", captured="08-Mar-2026 01:30:00"),  # EST, UTC-5
        click_row("2", captured="08-Mar-2026 02:30:00"),  # does not exist
        click_row("3", captured="08-Mar-2026 03:30:00"),  # EDT, UTC-4
        click_row("4", captured="01-Nov-2026 01:30:00"),  # ambiguous: the earlier (EDT)
    ]
    path = write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n")
    events, rejected, _ = parse_all(path, timezone="America/New_York")
    assert events["event_captured_at"].to_list() == [
        datetime(2026, 3, 8, 6, 30),
        datetime(2026, 3, 8, 7, 30),
        datetime(2026, 11, 1, 5, 30),
    ]
    assert rejected["reason"].to_list() == [
        "EVENT_CAPTURED_DT: '08-Mar-2026 02:30:00' does not exist in America/New_York "
        "(clock change)"
    ]
    utc, _, _ = parse_all(path)
    assert utc["event_captured_at"][0] == datetime(2026, 3, 8, 1, 30)
    with pytest.raises(ValueError, match="ingest.timezone"):
        parse_all(path, timezone="Mars/Olympus")


def test_launch_state_and_contacts_mappings(tmp_path: Path) -> None:
    launch = write(
        tmp_path,
        "ACCOUNT_ID,CAMPAIGN_ID,LAUNCH_ID,CAMPAIGN_NAME,LAUNCH_NAME,LAUNCH_STATUS,SUBJECT,"
        "LAUNCH_STARTED_DT,PURPOSE\n10001,3000,70000,Spring,Spring_1,C,Hi,03-Jan-2026 10:00:00,P\n"
        "10001,3000,,Spring,Spring_2,C,Hi,,P\n",
        "10001_LAUNCH_STATE_20260103_000000.txt",
    )
    events, rejected, _ = parse_all(launch, "LAUNCH_STATE")
    row = events.row(0, named=True)
    assert (row["campaign_name"], row["launch_id"], row["subject"]) == ("Spring", 70000, "Hi")
    assert row["launch_started_at"] == datetime(2026, 1, 3, 10)
    assert json.loads(row["attributes"]) == {"PURPOSE": "P"}
    assert rejected["reason"].to_list() == ["LAUNCH_ID: missing required value"]

    contacts = write(
        tmp_path,
        "RIID_,EMAIL_ADDRESS_,EMAIL_PERMISSION_STATUS_,MODIFIED_DATE_,CITY_\n"
        "1, Anna.Meyer@Example.COM ,i,2026-01-03 10:00:00,Berlin\n"
        "2,b@example.com,X,03-Jan-2026 10:00:00,\n",
        "10001_CONTACTS_20260103_000000.txt",
    )
    events, rejected, _ = parse_all(contacts, "CONTACTS", timezone="Europe/Berlin")
    row = events.row(0, named=True)
    assert (row["email"], row["email_permission_status"]) == ("anna.meyer@example.com", "I")
    assert row["modified_at"] == datetime(2026, 1, 3, 9)
    assert json.loads(row["attributes"]) == {"CITY_": "Berlin"}
    assert rejected["source_line"].to_list() == [3]
    assert rejected["reason"][0].startswith("EMAIL_PERMISSION_STATUS_: 'X'")


def test_complaint_email_comes_from_complainer_email(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "RIID,EVENT_CAPTURED_DT,COMPLAINER_EMAIL,SPAM_TYPE,COMPLAINT_DT\n"
        "5,03-Jan-2026 10:00:00,a@example.com,abuse,03-Jan-2026 09:59:00\n",
        "10001_COMPLAINT_20260103_000000.txt",
    )
    events, _, _ = parse_all(path, "COMPLAINT")
    assert events["email"].to_list() == ["a@example.com"]
    assert json.loads(events["attributes"][0]) == {
        "SPAM_TYPE": "abuse",
        "COMPLAINT_DT": "03-Jan-2026 09:59:00",
    }


def test_unknown_feed_is_a_caller_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no layout"):
        parse_all(write(tmp_path, HEADER + "\n"), "NOPE")
