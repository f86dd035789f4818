"""Keeping each call within Responsys's per-call limits: rows are cut into batches by count and
by size in the exact JSON that is sent, and a call that would not fit is refused before sending."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from responsys_assets.lib.responsys.limits import (
    BATCH_BYTES_MARGIN,
    MAX_BODY_BYTES,
    MAX_RECORDS_PER_CALL,
)


def _dumps(body: Any) -> bytes:
    """Compact JSON with non-ASCII escaped as \\uXXXX, as Responsys requires (§2.5)."""
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _json_size(record: Any) -> int:
    if hasattr(record, "to_json"):
        record = record.to_json()
    return len(_dumps(record))


def batches(
    records: Iterable[Any],
    max_records: int = MAX_RECORDS_PER_CALL,
    max_bytes: int = MAX_BODY_BYTES - BATCH_BYTES_MARGIN,
) -> Iterator[list[Any]]:
    """Cut records into lists that fit one call: at most `max_records` rows and `max_bytes` of
    JSON rows. A single row bigger than `max_bytes` raises ValueError (it can never be sent)."""
    if max_records < 1 or max_bytes < 1:
        raise ValueError("max_records and max_bytes must be positive")
    batch: list[Any] = []
    size = 0
    for index, record in enumerate(records):
        record_size = _json_size(record) + 1  # the comma between rows
        if record_size > max_bytes:
            raise ValueError(
                f"record {index} is {record_size} bytes of JSON; the limit is {max_bytes}"
            )
        if batch and (len(batch) >= max_records or size + record_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record_size
    if batch:
        yield batch


def _check_records(field_names: Sequence[str], records: Sequence[Sequence[str | None]]) -> None:
    """Every row must line up with field_names (Segment's misalignment defect, peers §1)."""
    if not field_names:
        raise ValueError("field_names is empty")
    if len(set(field_names)) != len(field_names):
        raise ValueError("field_names has duplicates")
    _check_count(len(records), "records")
    for index, row in enumerate(records):
        if isinstance(row, (str, bytes)) or len(row) != len(field_names):
            raise ValueError(
                f"record {index} has {len(row)} values for {len(field_names)} field names"
            )
        for value in row:
            if value is not None and not isinstance(value, str):
                raise ValueError(f"record {index}: values must be strings or None")


def _check_count(count: int, what: str) -> None:
    if count == 0:
        raise ValueError(f"no {what} to send")
    if count > MAX_RECORDS_PER_CALL:
        raise ValueError(
            f"{count} {what} in one call; Responsys accepts at most {MAX_RECORDS_PER_CALL} "
            "(use batches())"
        )
