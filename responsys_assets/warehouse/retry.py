"""Retry a write transaction that lost a commit race on a DuckLake, with a bounded back-off.

Two DuckLake writers that change the same table in overlapping transactions cannot both
commit: the second fails ("Failed to commit DuckLake transaction") and is rolled back whole.
Our writes are idempotent transactions (a file's load, an export batch's ledger rows, an
evaluation), so the loser simply runs again on the newer snapshot. A DuckDB file never
conflicts this way: it has one writer.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

log = logging.getLogger(__name__)
T = TypeVar("T")

ATTEMPTS = 8
FIRST_WAIT_SECONDS = 0.05
MAX_WAIT_SECONDS = 2.0
_CONFLICT_TEXT = ("failed to commit ducklake transaction", "transaction conflict", "conflict on")


class CommitConflictError(Exception):
    """A write kept conflicting with other writers for every allowed attempt."""


def is_conflict(exc: BaseException) -> bool:
    """Whether `exc` is a commit race another attempt can win (not a real error)."""
    if not isinstance(exc, duckdb.Error):
        return False
    text = str(exc).lower()
    return any(marker in text for marker in _CONFLICT_TEXT)


def with_retries(
    write: Callable[[], T],
    *,
    what: str,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `write` (one whole transaction, rolled back on failure) until it commits.

    At most `attempts` runs, waiting a jittered, doubling interval between them; any error that
    is not a commit conflict is raised at once.
    """
    wait = FIRST_WAIT_SECONDS
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except duckdb.Error as exc:
            if not is_conflict(exc):
                raise
            if attempt == attempts:
                raise CommitConflictError(
                    f"{what}: the warehouse kept refusing the commit because other writers "
                    f"changed the same tables ({attempts} attempts); the last error: {exc}"
                ) from exc
            log.info("%s: commit conflict (attempt %d of %d), retrying", what, attempt, attempts)
            sleep(wait * (0.5 + random.random()))
            wait = min(wait * 2, MAX_WAIT_SECONDS)
    raise AssertionError("unreachable")


def retried(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorate a function that is one whole write transaction: run it `with_retries`."""

    def decorate(write: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(write)
        def wrapper(*args, **kwargs) -> T:
            return with_retries(lambda: write(*args, **kwargs), what=what)

        return wrapper

    return decorate
