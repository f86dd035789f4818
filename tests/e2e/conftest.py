"""The one `responsys-assets run` that the CLI and notebook tests share (about a minute).

The notebook tests read a copy of its snapshot taken right after the run, so what the CLI tests
do to the live state afterwards (a second run, a corrupt file) never reaches them.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from responsys_assets.warehouse import snapshot_path
from tests.e2e.cli_support import cli_env, run_cli


@dataclass(frozen=True)
class FirstRun:
    tmp: Path
    env: dict[str, str]
    result: subprocess.CompletedProcess
    pristine_warehouse: Path | None  # its snapshot, copied before any test touched the state


@pytest.fixture(scope="session")
def cli_first_run(tmp_path_factory) -> FirstRun:
    """`responsys-assets run` on a small sandbox: 300 contacts, 3 days of events."""
    tmp = tmp_path_factory.mktemp("cli")
    env = cli_env(tmp)
    result = run_cli(env, "run")
    pristine = None
    snapshot = snapshot_path(tmp / "warehouse.duckdb")
    if result.returncode == 0 and snapshot.is_file():
        pristine = tmp_path_factory.mktemp("pristine") / "warehouse.duckdb"
        shutil.copyfile(snapshot, snapshot_path(pristine))
    return FirstRun(tmp, env, result, pristine)
