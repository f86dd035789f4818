"""Ingest assets: one dynamic partition per Connect file, landed then loaded.

`responsys/landed_files` copies the remote file into the immutable landing zone (server
retention is ~14 days, ours is forever); `responsys/events` decrypts, parses, validates and
loads it. Re-materialising a partition reloads it from the landing zone.
"""

import time
from pathlib import Path

import dagster as dg

from responsys_assets.config import IngestConfig
from responsys_assets.defs.ingest.load import FileRecord, LoadResult, load_file, record_file
from responsys_assets.defs.ingest.partitions import responsys_files
from responsys_assets.keys import (
    EVENTS,
    FEED_FAIL_AFTER,
    FEED_WARN_AFTER,
    FILE_POOLS,
    LANDED_FILES,
    Pools,
)
from responsys_assets.lib.feeds import UnknownFileName, parse_file_name
from responsys_assets.lib.landing import LandedFile, LandedFileChanged, LandingZone
from responsys_assets.lib.pgp import is_pgp_file
from responsys_assets.resources import PGPResource, SFTPResource
from responsys_assets.warehouse.resource import WarehouseResource
from responsys_assets.warehouse.retry import with_retries

CHANGED_TAG = "responsys/file_changed"

FILE_CADENCE = dg.FreshnessPolicy.time_window(
    fail_window=FEED_FAIL_AFTER, warn_window=FEED_WARN_AFTER
)


class IngestError(Exception):
    """A file could not be ingested; the message names it and says what to do."""


def _progress_logger(context, name: str, total: int):
    step = max(total // 10, 8 << 20)
    state = {"next": step}

    def report(done: int, _total: int) -> None:
        if done >= state["next"]:
            context.log.info(f"{name}: downloaded {done:,} of {total:,} bytes")
            state["next"] += step

    return report


def build_ingest_assets(ingest: IngestConfig, pools: Pools = FILE_POOLS) -> list:
    @dg.asset(
        key=LANDED_FILES,
        partitions_def=responsys_files,
        group_name="ingest",
        kinds={"sftp"},
        freshness_policy=FILE_CADENCE,
        description="Connect files copied from SFTP into the immutable landing zone (sha256).",
    )
    def landed_files(
        context: dg.AssetExecutionContext, sftp: SFTPResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        name = context.partition_key
        zone = LandingZone(Path(warehouse.landing_dir))
        existing = zone.get(name)
        forced = context.run.tags.get(CHANGED_TAG) == "true"
        started = time.perf_counter()
        source = "landing zone"
        if existing is None or forced:
            if sftp.mode == "sandbox":
                context.log.info("reading from the embedded sandbox (no RESPONSYS_* variable set)")
            with sftp.open() as remote:
                listed = {f.name: f for f in remote.list_files()}
                if name not in listed and existing is None:
                    raise IngestError(
                        f"{name}: not on the SFTP server any more and never landed here; "
                        "Responsys keeps files ~14 days, so it cannot be recovered from there."
                    )
                if name in listed:
                    size = listed[name].size
                    try:
                        landed = remote.download(
                            name, zone, progress=_progress_logger(context, name, size)
                        ).landed
                    except LandedFileChanged as exc:
                        raise IngestError(
                            f"{name} changed on the SFTP server after it was landed "
                            f"(sha256 {exc.existing_sha256[:12]} -> {exc.new_sha256[:12]}). "
                            f"The loaded version is kept; the new bytes are at {exc.kept_path}. "
                            "Ask Oracle why the file was rewritten; to load the new version, "
                            "move it over the landed file and re-materialise this partition."
                        ) from None
                    source = "sftp"
                else:
                    landed = existing
        else:
            landed = existing
        assert landed is not None
        context.log.info(f"{name}: {landed.size:,} bytes from the {source}, sha256 {landed.sha256}")
        return dg.MaterializeResult(
            metadata={
                "file": name,
                "bytes": landed.size,
                "sha256": landed.sha256,
                "source": source,
                "seconds": round(time.perf_counter() - started, 3),
                "mode": sftp.mode,
            }
        )

    @dg.asset(
        key=EVENTS,
        deps=[LANDED_FILES],
        partitions_def=responsys_files,
        group_name="ingest",
        kinds={"duckdb", "polars"},
        pool=pools.ingest,
        freshness_policy=FILE_CADENCE,
        check_specs=[
            dg.AssetCheckSpec("rows_reconcile", asset=EVENTS),
            dg.AssetCheckSpec("no_duplicate_lines", asset=EVENTS),
        ],
        description=(
            "Decrypted, validated Connect events in DuckDB (responsys.events, launch_states, "
            "contacts), one transaction per file; rejected rows kept with their reason."
        ),
    )
    def events(context: dg.AssetExecutionContext, warehouse: WarehouseResource, pgp: PGPResource):
        name = context.partition_key
        zone = LandingZone(Path(warehouse.landing_dir))
        landed = zone.get(name)
        if landed is None:
            raise IngestError(f"{name}: not in the landing zone; materialise landed_files first")
        try:
            feed = parse_file_name(name, contacts_token=ingest.contacts_feed or "CONTACTS").feed
        except UnknownFileName:
            feed = None
        encrypted = is_pgp_file(landed.path)
        record = FileRecord(name, feed, landed.sha256, landed.size, encrypted, str(landed.path))
        if feed is None:
            with warehouse.connect() as conn:
                reason = "unknown feed in the file name"
                with_retries(
                    lambda: record_file(conn, record, "skipped", error=reason),
                    what=f"{name}: recording the skipped file",
                )
            context.log.warning(f"{name}: unknown feed; recorded as skipped, nothing loaded")
            yield dg.MaterializeResult(
                metadata={"file": name, "status": "skipped", "reason": "unknown feed"},
                check_results=[
                    dg.AssetCheckResult(check_name="rows_reconcile", passed=True),
                    dg.AssetCheckResult(check_name="no_duplicate_lines", passed=True),
                ],
            )
            return
        try:
            result, checks = _load_landed(context, warehouse, pgp, landed, record, ingest)
        except Exception as exc:
            with warehouse.connect() as conn:
                error = str(exc)[:2000]
                with_retries(
                    lambda: record_file(conn, record, "failed", error=error),
                    what=f"{name}: recording the failure",
                )
            raise
        yield dg.MaterializeResult(
            metadata={
                "file": name,
                "feed": feed,
                "status": "loaded",
                "table": result.table,
                "rows_loaded": result.loaded,
                "rows_rejected": result.rejected,
                "data_rows": result.data_rows,
                "rows_by_event_type": dict(result.rows_by_event_type),
                "rejections_by_field": dict(result.rejection_reasons),
                "bytes": landed.size,
                "encrypted": encrypted,
                "seconds": round(result.seconds, 3),
                "mode": pgp.mode,
            },
            check_results=checks,
        )

    return [landed_files, events]


def _count_lines(path: Path) -> int:
    """Physical lines in a file (a last line without newline counts)."""
    lines = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (0 if last == b"\n" else 1)


def _load_landed(context, warehouse, pgp, landed: LandedFile, record: FileRecord, ingest):
    plain = landed.path
    work = Path(warehouse.landing_dir) / ".work"
    tmp_plain: Path | None = None
    try:
        if record.encrypted:
            decryptor = pgp.decryptor()
            if decryptor is None:
                raise IngestError(
                    f"{record.file_name} is PGP-encrypted but RESPONSYS_PGP_PRIVATE_KEY is not "
                    "set; set it (and RESPONSYS_PGP_PASSPHRASE) and re-materialise."
                )
            work.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp_plain = work / f"{record.file_name}.plain"
            stats = decryptor.decrypt_file(landed.path, tmp_plain, name=record.file_name)
            context.log.info(f"{record.file_name}: decrypted {stats}")
            plain = tmp_plain
        lines = _count_lines(plain)

        def progress(rows: int) -> None:
            context.log.info(f"{record.file_name}: {rows:,} rows parsed")

        # One write connection for the load and its checks: each write connection publishes
        # a copy of the warehouse for notebooks, which should happen once per file.
        with warehouse.connect() as conn:
            result = load_file(
                conn,
                plain,
                record,
                delimiter=ingest.delimiter,
                timezone=ingest.timezone,
                progress=progress,
            )
            return result, _checks(conn, result, lines)
    finally:
        if tmp_plain is not None:
            tmp_plain.unlink(missing_ok=True)


def _checks(conn, result: LoadResult, lines: int) -> list[dg.AssetCheckResult]:
    """Row reconciliation and duplicate-line checks of one loaded file."""
    counted, last_line = conn.execute(
        f"""
        select count(*), max(source_line) from (
            select source_line from {result.table} where source_file = $f
            union all
            select source_line from responsys.rejected_rows where source_file = $f
        )
        """,
        {"f": result.source_file},
    ).fetchone()
    dupes = conn.execute(
        f"""
        select count(*) from (
            select source_line from {result.table} where source_file = ?
            group by source_line having count(*) > 1
        )
        """,
        [result.source_file],
    ).fetchone()[0]
    reconciled = counted == result.data_rows and (last_line or 1) <= lines
    return [
        dg.AssetCheckResult(
            check_name="rows_reconcile",
            passed=bool(reconciled),
            metadata={
                "data_rows_in_file": result.data_rows,
                "rows_in_warehouse": counted,
                "physical_lines": lines,
                "last_source_line": last_line or 0,
            },
        ),
        dg.AssetCheckResult(
            check_name="no_duplicate_lines",
            passed=dupes == 0,
            metadata={"duplicated_lines": dupes},
        ),
    ]
