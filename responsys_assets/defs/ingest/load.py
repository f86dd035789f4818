"""Load one decrypted Connect file into DuckDB in a single transaction.

Delete-then-insert by `source_file` makes a re-run replace rather than duplicate, and the
manifest row in `responsys.ingested_files` is written in the same transaction, so a file is
either fully loaded and recorded or not at all.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from responsys_assets.defs.ingest.parse import parse_event_file
from responsys_assets.lib.feeds import LAYOUTS
from responsys_assets.warehouse.retry import retried
from responsys_assets.warehouse.transaction import rollback
from responsys_assets.warehouse.upsert import upsert

TARGET_TABLES = {
    "events": "responsys.events",
    "launch_states": "responsys.launch_states",
    "contacts": "responsys.contacts",
}


@dataclass
class LoadResult:
    source_file: str
    feed: str
    table: str
    data_rows: int = 0
    loaded: int = 0
    rejected: int = 0
    seconds: float = 0.0
    rows_by_event_type: Counter = field(default_factory=Counter)
    rejection_reasons: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class FileRecord:
    """What the manifest says about a landed file."""

    file_name: str
    feed: str | None
    sha256: str
    size_bytes: int
    encrypted: bool
    landed_path: str


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0] if ":" in reason else reason


@retried("loading a file")  # on a lake, a reload racing another load may lose its commit
def load_file(
    conn: duckdb.DuckDBPyConnection,
    plain_path: Path,
    record: FileRecord,
    *,
    delimiter: str | None = None,
    timezone: str = "UTC",
    batch_rows: int = 200_000,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Parse, validate and load; raises (and loads nothing) on a file-level contract error."""
    assert record.feed is not None, "unknown feeds are recorded as skipped, not loaded"
    layout = LAYOUTS[record.feed]
    table = TARGET_TABLES[layout.target]
    result = LoadResult(source_file=record.file_name, feed=record.feed, table=table)
    started = time.perf_counter()
    conn.execute("set preserve_insertion_order = false")  # order is kept in source_line
    conn.execute("begin transaction")
    try:
        for name in TARGET_TABLES.values():
            conn.execute(f"delete from {name} where source_file = ?", [record.file_name])
        conn.execute(
            "delete from responsys.rejected_rows where source_file = ?", [record.file_name]
        )
        batches = parse_event_file(
            plain_path,
            source_file=record.file_name,
            feed=record.feed,
            delimiter=delimiter,
            timezone=timezone,
            batch_rows=batch_rows,
        )
        for batch in parsed_ahead(batches):
            result.data_rows += batch.data_rows
            if batch.events.height:
                _insert(conn, table, batch.events)
                result.loaded += batch.events.height
                if "event_type" in batch.events.columns:
                    for event_type, count in batch.events["event_type"].value_counts().iter_rows():
                        result.rows_by_event_type[event_type] += count
            if batch.rejected.height:
                _insert(conn, "responsys.rejected_rows", batch.rejected)
                result.rejected += batch.rejected.height
                for reason in batch.rejected["reason"].to_list():
                    result.rejection_reasons[_reason_kind(reason)] += 1
            if progress:
                progress(result.data_rows)
        result.seconds = time.perf_counter() - started
        record_file(conn, record, "loaded", result=result)
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
    return result


def parsed_ahead(batches: Iterator) -> Iterator:
    """Parse the next batch in a thread while the caller inserts this one (one batch ahead).

    Polars and DuckDB both release the GIL, so parsing and inserting overlap on two cores;
    memory stays bounded at two batches.
    """
    done = object()
    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        ahead.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            ahead.put(exc)

    thread = threading.Thread(target=produce, name="parse-ahead", daemon=True)
    thread.start()
    try:
        while (item := ahead.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                ahead.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.2)


def _as_arrow(frame: pl.DataFrame) -> pa.Table:
    """Arrow for DuckDB; `attributes` typed as arrow JSON so DuckDB does not re-parse it
    (parse.py builds it with polars' JSON encoder, valid by construction)."""
    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    index = table.schema.get_field_index("attributes")
    if index < 0:
        return table
    json_type = pa.json_(pa.large_string())
    column = table.column(index).combine_chunks().cast(pa.large_string())
    return table.set_column(
        index,
        pa.field("attributes", json_type),
        pa.ExtensionArray.from_storage(json_type, column),
    )


def _insert(conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Insert through DuckDB's replacement scan of a local variable, not `register`: a view
    registered and dropped inside the file's transaction stays alive until commit (for
    rollback), and with it every batch's Arrow data, so memory grew with the file's size."""
    incoming = _as_arrow(frame)  # noqa: F841 - read by name by the replacement scan below
    conn.execute(f"insert into {table} by name select * from incoming")


MANIFEST_COLUMNS = [
    "file_name", "feed", "sha256", "size_bytes", "encrypted", "status", "row_count",
    "rejected_count", "error", "landed_path", "ingested_at", "seconds",
]  # fmt: skip


def record_file(
    conn: duckdb.DuckDBPyConnection,
    record: FileRecord,
    status: str,
    *,
    result: LoadResult | None = None,
    error: str | None = None,
) -> None:
    """Upsert the manifest row for a file (loaded, failed, skipped or changed)."""
    upsert(
        conn,
        "responsys.ingested_files",
        ["file_name"],
        MANIFEST_COLUMNS,
        """
        select ?::varchar as file_name, ?::varchar as feed, ?::varchar as sha256,
               ?::bigint as size_bytes, ?::boolean as encrypted, ?::varchar as status,
               ?::bigint as row_count, ?::bigint as rejected_count, ?::varchar as error,
               ?::varchar as landed_path, (now() at time zone 'UTC') as ingested_at,
               ?::double as seconds
        """,
        [
            record.file_name,
            record.feed,
            record.sha256,
            record.size_bytes,
            record.encrypted,
            status,
            result.loaded if result else None,
            result.rejected if result else None,
            error,
            record.landed_path,
            result.seconds if result else None,
        ],
    )


def loaded_sha256(conn: duckdb.DuckDBPyConnection, file_name: str) -> str | None:
    """The checksum of the version of this file already loaded, if any."""
    row = conn.execute(
        "select sha256 from responsys.ingested_files where file_name = ? and status = 'loaded'",
        [file_name],
    ).fetchone()
    return row[0] if row else None
