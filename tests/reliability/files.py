"""A small set of realistic Connect files (some encrypted with real GnuPG) and their expected
data-row counts, shared by the SFTP and landing-zone scenarios."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from responsys_assets.sandbox.sample_data import DEFAULT_FEEDS, generate_event_files
from tests.reliability.support import csv_data_rows
from tests.support.gpg import GnuPG

ENCRYPTED_FEEDS = ("_OPEN_", "_CLICK_")


@dataclass
class ConnectFiles:
    folder: Path  # the files as the server holds them
    expected: dict[str, int]  # remote name -> data rows of its plaintext

    @property
    def names(self) -> list[str]:
        return sorted(self.expected)

    def copy_to(self, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            shutil.copyfile(self.folder / name, target / name)


def make_connect_files(
    folder: Path, gpg: GnuPG, *, contacts: int = 1500, days: int = 2, seed: int = 3
) -> ConnectFiles:
    """Generate plaintext files, count their rows, encrypt OPEN and CLICK files with gpg."""
    plain_dir, remote = folder / "plain", folder / "remote"
    remote.mkdir(parents=True, exist_ok=True)
    end = (datetime.now(UTC) - timedelta(days=1)).replace(
        tzinfo=None, hour=0, minute=0, second=0, microsecond=0
    )
    plain = generate_event_files(
        plain_dir, contacts=contacts, days=days, seed=seed, end=end, feeds=DEFAULT_FEEDS
    )
    expected: dict[str, int] = {}
    for path in plain:
        rows = csv_data_rows(path)
        if any(token in path.name for token in ENCRYPTED_FEEDS):
            name = path.name + ".gpg"
            gpg.encrypt(path, remote / name)
        else:
            name = path.name
            shutil.copyfile(path, remote / name)
        expected[name] = rows
    return ConnectFiles(remote, expected)
