"""Behavioural scores (0-100) and the propensity calibration, as of a point in time.

Scores are computed in SQL (scores.sql) from audiences.profiles, which must have been built for
the same `as_of`; definitions are in docs/scores.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from responsys_assets.defs.audiences.profiles import normalise_as_of, render_sql

SCORES_SQL = Path(__file__).with_name("scores.sql")
SCORE_COLUMNS = (
    "quantity_score",
    "frequency_score",
    "recency_score",
    "intensity_score",
    "momentum_score",
    "consistency_score",
    "propensity_score",
)


class StaleProfilesError(RuntimeError):
    """audiences.profiles was built for another time than the one asked for."""


@dataclass(frozen=True)
class CalibrationRow:
    """Of `profiles` in `bucket` a week before as_of, `engaged_next_7d` opened or clicked since."""

    bucket: str
    profiles: int
    engaged_next_7d: int
    rate: float
    propensity_score: int


def profiles_as_of(conn: duckdb.DuckDBPyConnection) -> datetime | None:
    """The time audiences.profiles was built for (None while it is empty)."""
    return conn.execute("select max(as_of) from audiences.profiles").fetchall()[0][0]


def require_profiles_as_of(conn: duckdb.DuckDBPyConnection, as_of: datetime) -> None:
    built = profiles_as_of(conn)
    if built is not None and built != normalise_as_of(as_of):
        raise StaleProfilesError(
            f"audiences.profiles is built as of {built}, not {normalise_as_of(as_of)}: "
            "run build_profiles (or recompute) for that time first"
        )


def build_scores(conn: duckdb.DuckDBPyConnection, as_of: datetime) -> int:
    """Rebuild audiences.scores and audiences.propensity_calibration; returns the scored rows."""
    require_profiles_as_of(conn, as_of)
    conn.execute(render_sql(SCORES_SQL, as_of))
    return conn.execute("select count(*) from audiences.scores").fetchall()[0][0]


def propensity_calibration(conn: duckdb.DuckDBPyConnection) -> list[CalibrationRow]:
    """How the last build calibrated propensity: one row per engagement bucket."""
    rows = conn.execute(
        "select bucket, profiles, engaged_next_7d, rate, propensity_score"
        " from audiences.propensity_calibration order by bucket"
    ).fetchall()
    return [CalibrationRow(*row) for row in rows]


def score_deciles(conn: duckdb.DuckDBPyConnection) -> dict[str, list[float]]:
    """Deciles (10 % ... 90 %) of every score in the last build, for run metadata."""
    selects = ", ".join(
        f"quantile_cont({name}, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])"
        for name in SCORE_COLUMNS
    )
    row = conn.execute(f"select {selects} from audiences.scores").fetchall()[0]
    return {name: list(values or []) for name, values in zip(SCORE_COLUMNS, row, strict=True)}
