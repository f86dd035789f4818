"""Every name and cadence the pipeline's parts share, defined once.

Asset keys, check names, job and schedule names, pools and the deadlines they are judged by:
a stage refers to another stage's asset through this module, never by importing the stage.
"""

from dataclasses import dataclass
from datetime import timedelta

import dagster as dg

# Assets, in data-flow order.
LANDED_FILES = dg.AssetKey(["responsys", "landed_files"])
EVENTS = dg.AssetKey(["responsys", "events"])
PROFILES = dg.AssetKey(["audiences", "profiles"])
MEMBERSHIPS = dg.AssetKey(["audiences", "memberships"])
AUDIENCE_ASSET_KEYS = (PROFILES, MEMBERSHIPS)


def export_key(name: str) -> dg.AssetKey:
    """The asset of the configured export `name`."""
    return dg.AssetKey(["exports", name])


# Checks.
FEEDS_STILL_ARRIVING = dg.AssetCheckKey(EVENTS, "feeds_still_arriving")
RECONCILE_CHECK = "matches_responsys"

# Jobs, schedules and sensors.
INGEST_JOB = "ingest_file_job"
AUDIENCES_JOB = "audiences_job"
FEED_CHECK_JOB = "feed_arrival_check_job"
FEED_CHECK_SCHEDULE = "feed_arrival_check_schedule"
AUDIENCES_SCHEDULE = "audiences_schedule"
SFTP_SENSOR = "sftp_file_sensor"
AUDIENCES_SENSOR = "audiences_on_new_events"


def export_job(name: str) -> str:
    return f"export_{name}_job"


def export_schedule(name: str) -> str:
    return f"export_{name}_schedule"


# Pools. A DuckDB file takes one writing process: every step that opens it holds WRITER_POOL
# (limit 1: dagster.yaml's default_limit). A lake takes many writers, so each stage has its own:
# files ingest in parallel (INGEST_POOL; its limit is set per deployment with
# `dagster instance concurrency set warehouse_ingest N`, deploy/), audience builds run one at a
# time, and each export one run at a time (both at the default limit of 1).
WRITER_POOL = "duckdb_writer"
INGEST_POOL = "warehouse_ingest"
AUDIENCES_POOL = "warehouse_audiences"


@dataclass(frozen=True)
class Pools:
    """Which pool each stage's warehouse steps hold; None holds none."""

    ingest: str
    audiences: str
    exports_prefix: str | None  # None: every export shares `ingest`'s pool (the file)
    checks: str | None

    def export(self, name: str) -> str:
        return f"{self.exports_prefix}{name}" if self.exports_prefix else self.ingest


FILE_POOLS = Pools(
    ingest=WRITER_POOL, audiences=WRITER_POOL, exports_prefix=None, checks=WRITER_POOL
)
LAKE_POOLS = Pools(
    ingest=INGEST_POOL, audiences=AUDIENCES_POOL, exports_prefix="warehouse_export_", checks=None
)


def pools_for(lake: bool) -> Pools:
    return LAKE_POOLS if lake else FILE_POOLS


# Cadences. Connect drops files every 6 hours: a feed is late after about 7 h (one missed
# drop plus slack) and failing after about 13 h (two missed drops).
FEED_WARN_AFTER = timedelta(hours=7)
FEED_FAIL_AFTER = timedelta(hours=13)
FEED_CHECK_CRON = "30 * * * *"  # hourly, half past, after the usual on-the-hour drop


def hours(delta: timedelta) -> str:
    """'7' for 7 hours: for descriptions that quote a cadence."""
    return f"{delta.total_seconds() / 3600:g}"


FEED_DEADLINES = (
    f"warn after ~{hours(FEED_WARN_AFTER)} h and fail after ~{hours(FEED_FAIL_AFTER)} h"
)


def audiences_cron(minutes: int) -> str:
    """The audiences schedule's cron for `audiences.evaluate_every_minutes`."""
    return "0 * * * *" if minutes == 60 else f"*/{minutes} * * * *"
