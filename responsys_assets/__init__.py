"""Dagster assets that keep Oracle Responsys and a DuckDB warehouse in sync."""
