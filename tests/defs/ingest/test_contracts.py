"""contract_holds: the one-pass shortcut must never pass a frame that pandera would reject."""

from __future__ import annotations

from datetime import datetime

import pandera.errors
import pandera.polars as pa
import polars as pl
import pytest

from responsys_assets.defs.ingest.contracts import contract_holds, schema_for


def _events(rows: int = 4) -> pl.DataFrame:
    at = datetime(2026, 1, 3, 13, 5, 32)
    return pl.DataFrame(
        {
            "event_type": ["CLICK"] * rows,
            "riid": list(range(1, rows + 1)),
            "customer_id": ["C1", None, "C3", "C4"][:rows],
            "email": [None] * rows,
            "account_id": [10001] * rows,
            "list_id": [None] * rows,
            "campaign_id": [3001] * rows,
            "launch_id": [70010] * rows,
            "event_captured_at": [at] * rows,
            "event_stored_at": [at, None, at, at][:rows],
            "attributes": ["{}"] * rows,
            "source_file": ["10001_CLICK_20260115_000000.txt"] * rows,
            "source_line": list(range(2, rows + 2)),
        },
        schema_overrides={
            "email": pl.String,
            "list_id": pl.Int64,
            "event_captured_at": pl.Datetime("us"),
            "event_stored_at": pl.Datetime("us"),
        },
    )


def _pandera_passes(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> bool:
    try:
        schema.validate(frame, lazy=True)
    except (pandera.errors.SchemaErrors, pandera.errors.SchemaError):
        return False
    return True


BROKEN = {
    "riid below 1": lambda f: f.with_columns(pl.lit(0, pl.Int64).alias("riid")),
    "null riid": lambda f: f.with_columns(pl.lit(None, pl.Int64).alias("riid")),
    "null captured": lambda f: f.with_columns(
        pl.lit(None, pl.Datetime("us")).alias("event_captured_at")
    ),
    "captured before 2000": lambda f: f.with_columns(
        pl.lit(datetime(1999, 12, 31), pl.Datetime("us")).alias("event_captured_at")
    ),
    "stored far in the future": lambda f: f.with_columns(
        pl.lit(datetime(2999, 1, 1), pl.Datetime("us")).alias("event_stored_at")
    ),
    "source_line 1": lambda f: f.with_columns(pl.lit(1, pl.Int64).alias("source_line")),
    "null attributes": lambda f: f.with_columns(pl.lit(None, pl.String).alias("attributes")),
    "riid as string": lambda f: f.with_columns(pl.col("riid").cast(pl.String)),
    "columns reordered": lambda f: f.select(["riid", *[c for c in f.columns if c != "riid"]]),
    "extra column": lambda f: f.with_columns(pl.lit(1).alias("extra")),
}


def test_a_clean_frame_holds_and_pandera_agrees() -> None:
    schema = schema_for("CLICK")
    frame = _events()
    assert contract_holds(schema, frame)
    assert _pandera_passes(schema, frame)


@pytest.mark.parametrize("breakage", sorted(BROKEN))
def test_a_broken_frame_never_holds(breakage: str) -> None:
    schema = schema_for("CLICK")
    frame = BROKEN[breakage](_events())
    assert not _pandera_passes(schema, frame), "the breakage must break the contract"
    assert not contract_holds(schema, frame)


def test_one_bad_row_among_good_ones_does_not_hold() -> None:
    schema = schema_for("CLICK")
    frame = _events().with_columns(
        pl.when(pl.col("source_line") == 4).then(0).otherwise(pl.col("riid")).alias("riid")
    )
    assert not contract_holds(schema, frame)
    assert not _pandera_passes(schema, frame)


def test_contacts_permission_values() -> None:
    schema = schema_for("CONTACTS")
    frame = pl.DataFrame(
        {
            "riid": [1, 2],
            "customer_id": ["C1", None],
            "email": ["a@example.com", None],
            "email_permission_status": ["I", "O"],
            "modified_at": [datetime(2026, 1, 1), None],
            "attributes": ["{}", "{}"],
            "source_file": ["f", "f"],
            "source_line": [2, 3],
        },
        schema_overrides={"customer_id": pl.String, "modified_at": pl.Datetime("us")},
    )
    assert contract_holds(schema, frame) and _pandera_passes(schema, frame)
    broken = frame.with_columns(pl.lit("X").alias("email_permission_status"))
    assert not contract_holds(schema, broken) and not _pandera_passes(schema, broken)


def test_a_rule_it_cannot_translate_sends_the_frame_to_pandera() -> None:
    schema = schema_for("CLICK")
    schema = schema.update_column("source_file", checks=[pa.Check.str_length(min_value=1)])
    assert not contract_holds(schema, _events())
    assert _pandera_passes(schema, _events())


@pytest.mark.parametrize(
    "check",
    [
        pa.Check.ge(2),
        pa.Check.gt(2),
        pa.Check.le(4),
        pa.Check.lt(4),
        pa.Check.in_range(2, 4),
        pa.Check.in_range(2, 4, include_min=False, include_max=False),
        pa.Check.isin([1, 3]),
    ],
    ids=lambda check: f"{check.name}{sorted(check.statistics.items())}",
)
def test_every_translated_rule_agrees_with_pandera_value_by_value(check: pa.Check) -> None:
    schema = pa.DataFrameSchema(
        {"n": pa.Column(pl.Int64, checks=[check], nullable=True)}, strict=True, ordered=True
    )
    for value in (None, 0, 1, 2, 3, 4, 5):
        frame = pl.DataFrame({"n": [3 if value != 3 else 2, value]}, schema={"n": pl.Int64})
        whole = pl.DataFrame({"n": [value]}, schema={"n": pl.Int64})
        for case in (frame, whole):
            assert contract_holds(schema, case) == _pandera_passes(schema, case), (value, case)
