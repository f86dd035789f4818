"""A small child process for kill scenarios: loads landed files or runs the exports with the
product's plain functions, printing one line per step so the parent can kill it mid-way.

    python -m tests.reliability.driver load WAREHOUSE LANDING [--only-missing]
    python -m tests.reliability.driver export WAREHOUSE BATCH_SIZE

Secrets come from the environment (RELIABILITY_PGP_KEY, RELIABILITY_PGP_PASSPHRASE,
RELIABILITY_API_ENDPOINT, RELIABILITY_API_PASSWORD), never from the command line.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import duckdb

from responsys_assets.lib.landing import SIDECAR_SUFFIX, LandingZone
from responsys_assets.lib.pgp import Decryptor
from responsys_assets.lib.responsys import ResponsysClient

LOCK_WAIT_SECONDS = 60.0


def open_connection(path: Path) -> duckdb.DuckDBPyConnection:
    """Like resources.warehouse.open_connection (whose module imports Dagster, seconds of start-up
    a kill scenario does not need): wait for another process's lock, bounded."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def load(warehouse: Path, landing: Path, only_missing: bool) -> None:
    from tests.reliability.support import ingest_landed

    zone = LandingZone(landing)
    names = sorted(
        p.name[: -len(SIDECAR_SUFFIX)] for p in landing.iterdir() if p.name.endswith(SIDECAR_SUFFIX)
    )
    decryptor = Decryptor(
        os.environ["RELIABILITY_PGP_KEY"], os.environ["RELIABILITY_PGP_PASSPHRASE"]
    )
    conn = open_connection(warehouse)  # created and migrated by the parent
    try:
        loaded = {
            r[0]
            for r in conn.execute(
                "select file_name from responsys.ingested_files where status = 'loaded'"
            ).fetchall()
        }
        for name in names:
            if only_missing and name in loaded:
                continue
            print(f"start {name}", flush=True)
            ingest_landed(conn, zone, name, decryptor)
            print(f"done {name}", flush=True)
    finally:
        conn.close()


def export(warehouse: Path, batch_size: int) -> None:
    from tests.reliability.exports_setup import USER, run_all

    conn = open_connection(warehouse)
    client = ResponsysClient(
        endpoint=os.environ["RELIABILITY_API_ENDPOINT"],
        username=USER,
        password=os.environ["RELIABILITY_API_PASSWORD"],
        timeout=10,
    )
    try:
        reports = run_all(conn, client, batch_size, log=lambda m: print(f"batch {m}", flush=True))
        for report in reports:
            print(f"report {report.export} ok={report.ok} stopped_by={report.stopped_by}")
    finally:
        client.close()
        conn.close()


def main(argv: list[str]) -> int:
    if argv[1] == "load":
        load(Path(argv[2]), Path(argv[3]), "--only-missing" in argv)
    elif argv[1] == "export":
        export(Path(argv[2]), int(argv[3]))
    else:
        raise SystemExit(f"unknown command {argv[1]!r}")
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
