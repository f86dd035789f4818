"""Shared fixtures: real OpenSSH sshd, real GnuPG, real PostgreSQL, real DuckDB files and lakes
(see tests/support/)."""

pytest_plugins = [
    "tests.support.sshd",
    "tests.support.gpg",
    "tests.support.postgres",
    "tests.support.warehouses",
]
