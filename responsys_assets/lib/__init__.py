"""Plain libraries: no Dagster, and nothing from above `lib` (enforced by import-linter)."""
