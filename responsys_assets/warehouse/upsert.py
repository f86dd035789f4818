"""Insert-or-replace by key without constraints: one MERGE statement, the same on both backends.

DuckLake has no PRIMARY KEY, so `INSERT OR REPLACE` has nothing to lean on; a MERGE keyed on the
columns we treat as the key is one atomic statement on a DuckDB file and on a DuckLake alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb


def upsert(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    keys: Sequence[str],
    columns: Sequence[str],
    source: str,
    params: Sequence | dict | None = None,
) -> None:
    """Write the rows `source` selects into `table`, replacing any row with the same `keys`.

    `source` is a SELECT yielding every name in `columns` (keys included), at most one row per
    key; a column of `table` not in `columns` keeps its value on replace and its default on
    insert.
    """
    missing = [key for key in keys if key not in columns]
    if missing:
        raise ValueError(f"upsert into {table}: key columns {missing} are not among the columns")
    assignments = ", ".join(f"{c} = s.{c}" for c in columns if c not in keys)
    matched = f"when matched then update set {assignments} " if assignments else ""
    conn.execute(
        f"merge into {table} using ({source}) as s using ({', '.join(keys)}) "
        f"{matched}"
        f"when not matched then insert ({', '.join(columns)}) "
        f"values ({', '.join('s.' + c for c in columns)})",
        params,
    )
