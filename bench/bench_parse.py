"""Benchmark: our CLICK-file parse + DuckDB insert against DuckDB's own read_csv of the same file.

Usage: .venv/bin/python bench/bench_parse.py [--rows 5000000] [--workdir DIR] [--keep]
Prints one JSON object: rows, bytes, duckdb_seconds, ours_seconds, ratio (duckdb/ours, higher is
better; the target is >= 0.7), ours_peak_rss_mb (peak RSS of the child process that ran ours).
Each side gets a fresh database file; ours runs in a child process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import queue
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIGRATION = ROOT / "warehouse" / "migrations" / "001_initial.sql"


def run_duckdb(csv_path: Path, db_path: Path) -> float:
    import duckdb

    started = time.perf_counter()
    conn = duckdb.connect(str(db_path))
    conn.execute(f"create table t as select * from read_csv('{csv_path}')")
    conn.close()
    return time.perf_counter() - started


def _arrow(events):  # noqa: ANN001, ANN202
    """The batch as Arrow; `attributes` typed as arrow.json so DuckDB skips re-parsing it.

    parse.py builds `attributes` with polars' JSON encoder, so it is valid JSON by construction.
    """
    import polars as pl
    import pyarrow as pa

    table = events.to_arrow(compat_level=pl.CompatLevel.oldest())
    index = table.schema.get_field_index("attributes")
    json_type = pa.json_(pa.large_string())
    column = pa.ExtensionArray.from_storage(json_type, table.column(index).combine_chunks())
    return table.set_column(index, pa.field("attributes", json_type), column)


def _prefetched(batches: Iterator) -> Iterator:
    """Parse the next batch in a thread while the caller inserts this one (one batch ahead)."""
    done = object()
    ahead: queue.Queue = queue.Queue(maxsize=1)

    def produce() -> None:
        try:
            for batch in batches:
                ahead.put(batch)
            ahead.put(done)
        except BaseException as exc:  # handed to the consumer, re-raised there
            ahead.put(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    while (item := ahead.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()


def run_ours(csv_path: Path, db_path: Path) -> dict:
    """Runs in the child: parse batches and insert them into responsys.events."""
    import duckdb

    from responsys_assets.defs.ingest.parse import parse_event_file

    started = time.perf_counter()
    conn = duckdb.connect(str(db_path))
    conn.execute(MIGRATION.read_text())
    # Rows carry source_line, so table order does not matter; this lets DuckDB insert in parallel.
    conn.execute("set preserve_insertion_order = false")
    rows = rejected = 0
    conn.execute("begin")
    batches = parse_event_file(csv_path, source_file=csv_path.name, feed="CLICK")
    for batch in _prefetched(batches):
        events = _arrow(batch.events)  # noqa: F841 (read by DuckDB's replacement scan)
        conn.execute("insert into responsys.events select * from events")
        rows += batch.events.height
        rejected += batch.rejected.height
    conn.execute("commit")
    loaded = conn.execute("select count(*) from responsys.events").fetchone()[0]
    conn.close()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "rows": rows,
        "loaded": loaded,
        "rejected": rejected,
        "peak_rss_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    parser.add_argument("--child", nargs=2, metavar=("CSV", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_ours(Path(args.child[0]), Path(args.child[1]))))
        return

    from responsys_assets.sandbox.sample_data import generate_click_file

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_parse_"))
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = workdir / f"10001_CLICK_20260115_000000_{args.rows}.txt"
    started = time.perf_counter()
    if not csv_path.exists():
        generate_click_file(csv_path, args.rows)
    generate_seconds = time.perf_counter() - started

    duck_db, ours_db = workdir / "duckdb.db", workdir / "ours.db"
    for db in (duck_db, ours_db):
        db.unlink(missing_ok=True)
    duckdb_seconds = run_duckdb(csv_path, duck_db)
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(csv_path), str(ours_db)],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    ours = json.loads(child.stdout.strip().splitlines()[-1])
    assert ours["rows"] == ours["loaded"] == args.rows, ours
    result = {
        "rows": args.rows,
        "bytes": csv_path.stat().st_size,
        "generate_seconds": round(generate_seconds, 2),
        "duckdb_seconds": round(duckdb_seconds, 2),
        "ours_seconds": round(ours["seconds"], 2),
        "ratio": round(duckdb_seconds / ours["seconds"], 3),
        "ours_peak_rss_mb": round(ours["peak_rss_mb"], 1),
    }
    for db in (duck_db, ours_db):
        db.unlink(missing_ok=True)
    if not args.keep:
        csv_path.unlink()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
