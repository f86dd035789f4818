"""Shared fixtures: real OpenSSH sshd, real GnuPG, real DuckDB files (see tests/support/)."""

pytest_plugins = ["tests.support.sshd", "tests.support.gpg"]
