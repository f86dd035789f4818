"""The contract of record for parsed event files: one pandera schema per target table and feed.

parse.py turns strings into types with vectorised polars expressions (a value that does not convert
is rejected there, with the raw text in the reason). The typed frame is then validated here with
`lazy=True`; every failure case with a row index becomes a rejected row, so the bounds below are
the only place the rules live.

pandera's polars backend runs one query per rule (about 0.8 s per million rows here, a third of
parsing), so `contract_holds` first evaluates the same rules, read from the schema, in one polars
pass; only a batch it cannot prove clean goes through pandera, which then names the failures.

Decisions:
- Timestamps must lie in [2000-01-01, now + 2 days] (UTC). Responsys did not exist before 2000 and
  clocks may be a little ahead; anything else is a broken date and the row is rejected.
- RIID is a positive integer and required on every event feed (not on LAUNCH_STATE).
- Contacts: email_permission_status is I or O; email is lower-cased and trimmed by the parser.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandera.polars as pa
import polars as pl

from responsys_assets.lib.feeds import LAYOUTS, FeedLayout

RESPONSYS_DATE_FORMAT = "%d-%b-%Y %H:%M:%S"
"""How Connect writes EVENT_CAPTURED_DT and friends, e.g. 03-Jan-2026 13:05:32."""
EARLIEST = datetime(2000, 1, 1)
FUTURE_SLACK = timedelta(days=2)

_TS = pl.Datetime("us")


def latest_allowed(now: datetime | None = None) -> datetime:
    """The newest timestamp we accept: now (UTC) plus the clock slack."""
    now = now or datetime.now(UTC)
    return now.replace(tzinfo=None) + FUTURE_SLACK


class EventsModel(pa.DataFrameModel):
    """responsys.events, in column order. Per-feed nullability is set by `schema_for`."""

    event_type: pl.Utf8 = pa.Field(nullable=False)
    riid: pl.Int64 = pa.Field(nullable=True, ge=1)
    customer_id: pl.Utf8 = pa.Field(nullable=True)
    email: pl.Utf8 = pa.Field(nullable=True)
    account_id: pl.Int64 = pa.Field(nullable=True)
    list_id: pl.Int64 = pa.Field(nullable=True)
    campaign_id: pl.Int64 = pa.Field(nullable=True)
    launch_id: pl.Int64 = pa.Field(nullable=True)
    event_captured_at: _TS = pa.Field(nullable=False)
    event_stored_at: _TS = pa.Field(nullable=True)
    attributes: pl.Utf8 = pa.Field(nullable=False)
    source_file: pl.Utf8 = pa.Field(nullable=False)
    source_line: pl.Int64 = pa.Field(nullable=False, ge=2)

    class Config:
        strict = True
        ordered = True


class LaunchStatesModel(pa.DataFrameModel):
    """responsys.launch_states, in column order."""

    account_id: pl.Int64 = pa.Field(nullable=True)
    list_id: pl.Int64 = pa.Field(nullable=True)
    campaign_id: pl.Int64 = pa.Field(nullable=False)
    launch_id: pl.Int64 = pa.Field(nullable=False)
    campaign_name: pl.Utf8 = pa.Field(nullable=True)
    launch_name: pl.Utf8 = pa.Field(nullable=True)
    launch_status: pl.Utf8 = pa.Field(nullable=True)
    launch_type: pl.Utf8 = pa.Field(nullable=True)
    subject: pl.Utf8 = pa.Field(nullable=True)
    event_captured_at: _TS = pa.Field(nullable=True)
    event_stored_at: _TS = pa.Field(nullable=True)
    launch_started_at: _TS = pa.Field(nullable=True)
    launch_completed_at: _TS = pa.Field(nullable=True)
    attributes: pl.Utf8 = pa.Field(nullable=False)
    source_file: pl.Utf8 = pa.Field(nullable=False)
    source_line: pl.Int64 = pa.Field(nullable=False, ge=2)

    class Config:
        strict = True
        ordered = True


class ContactsModel(pa.DataFrameModel):
    """responsys.contacts, in column order."""

    riid: pl.Int64 = pa.Field(nullable=False, ge=1)
    customer_id: pl.Utf8 = pa.Field(nullable=True)
    email: pl.Utf8 = pa.Field(nullable=True)
    email_permission_status: pl.Utf8 = pa.Field(nullable=False, isin=["I", "O"])
    modified_at: _TS = pa.Field(nullable=True)
    attributes: pl.Utf8 = pa.Field(nullable=False)
    source_file: pl.Utf8 = pa.Field(nullable=False)
    source_line: pl.Int64 = pa.Field(nullable=False, ge=2)

    class Config:
        strict = True
        ordered = True


_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "events": EventsModel,
    "launch_states": LaunchStatesModel,
    "contacts": ContactsModel,
}
TIMESTAMP_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("event_captured_at", "event_stored_at"),
    "launch_states": (
        "event_captured_at",
        "event_stored_at",
        "launch_started_at",
        "launch_completed_at",
    ),
    "contacts": ("modified_at",),
}


def schema_for(feed: str, *, now: datetime | None = None) -> pa.DataFrameSchema:
    """The typed-output contract for one feed: the target table's schema plus the feed's rules."""
    layout: FeedLayout = LAYOUTS[feed]
    schema = _MODELS[layout.target].to_schema()
    if layout.target == "events" and "RIID" in layout.required:
        schema = schema.update_column("riid", nullable=False)
    latest = latest_allowed(now)
    bound = pa.Check.in_range(
        EARLIEST,
        latest,
        error=f"is outside the accepted range {EARLIEST:%Y-%m-%d} .. {latest:%Y-%m-%d %H:%M} UTC",
    )
    for column in TIMESTAMP_COLUMNS[layout.target]:
        checks = list(schema.columns[column].checks) + [bound]
        schema = schema.update_column(column, checks=checks)
    return schema


# The pandera checks contract_holds can evaluate, by name: (column, statistics) -> rows that pass.
_RULES = {
    "greater_than_or_equal_to": lambda c, s: c >= s["min_value"],
    "greater_than": lambda c, s: c > s["min_value"],
    "less_than_or_equal_to": lambda c, s: c <= s["max_value"],
    "less_than": lambda c, s: c < s["max_value"],
    "in_range": lambda c, s: (
        (c >= s["min_value"] if s["include_min"] else c > s["min_value"])
        & (c <= s["max_value"] if s["include_max"] else c < s["max_value"])
    ),
    "isin": lambda c, s: c.is_in(list(s["allowed_values"])),
}


def contract_holds(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> bool:
    """True when every row of `frame` provably passes `schema`, in one polars pass.

    False when a row fails or when the schema uses anything this function does not translate
    (a frame-level check, uniqueness, coercion, a check it does not know): the caller then runs
    pandera, the contract of record, which decides and names the failures.
    """
    if schema.checks or schema.unique or schema.coerce or not schema.strict:
        return False
    if list(frame.columns) != list(schema.columns):
        return False
    passes: list[pl.Expr] = []
    for name, column in schema.columns.items():
        if column.unique or column.coerce or frame.schema[name] != column.dtype.type:
            return False
        value = pl.col(name)
        if not column.nullable:
            passes.append(value.is_not_null().all())
        for check in column.checks:
            rule = _RULES.get(check.name)
            if rule is None or getattr(check, "ignore_na", True) is not True:
                return False
            passes.append(rule(value, check.statistics).all())  # nulls ignored, as pandera does
    if not passes:
        return True
    return all(frame.select(p.alias(str(i)) for i, p in enumerate(passes)).row(0))


def column_order(target: str) -> list[str]:
    """The target table's columns in order, as the parser must produce them."""
    return list(_MODELS[target].to_schema().columns)
