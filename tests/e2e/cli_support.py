"""Running `responsys-assets` as a user does, for the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from responsys_assets.settings import PROJECT_ROOT

CLI = [sys.executable, "-m", "responsys_assets"]


def short_history_config(tmp: Path) -> Path:
    """The shipped example, with the campaign trigger on an audience 3 days of data can fill
    ("cooling_off" needs more than a week of history)."""
    text = (PROJECT_ROOT / "responsys_assets/example_config.yaml").read_text()
    text = text.replace("audience: cooling_off", "audience: engaged")
    path = tmp / "config.yaml"
    path.write_text(text)
    return path


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONSYS_")}
    env.update(
        {
            "RESPONSYS_CONFIG": str(short_history_config(tmp)),
            "RESPONSYS_WAREHOUSE": str(tmp / "warehouse.duckdb"),
            "RESPONSYS_LANDING_DIR": str(tmp / "landing"),
            "RESPONSYS_SANDBOX_DIR": str(tmp / "sandbox"),
            "RESPONSYS_SANDBOX_CONTACTS": "300",
            "RESPONSYS_SANDBOX_DAYS": "3",
            "DAGSTER_HOME": str(tmp / "dagster_home"),
        }
    )
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
