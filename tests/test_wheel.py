"""The wheel users install: built with `uv build`, installed into a clean venv, run from there.

Everything comes from uv's cache (`--offline`): `make test` has synced the same lock file.
Commands run outside the checkout with no PYTHONPATH, so only the installed package is found.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from responsys_assets.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e

MIGRATIONS = PROJECT_ROOT / "responsys_assets" / "warehouse" / "migrations"


def _uv() -> list[str]:
    found = shutil.which("uv")
    if found:
        return [found]
    python = shutil.which("python3") or sys.executable
    return [python, "-m", "uv"]


def _run(args: list, *, cwd: Path, env: dict | None = None, timeout: float = 300):
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _clean_env(**extra: str) -> dict[str, str]:
    drop = ("RESPONSYS_", "DAGSTER_HOME", "PYTHONPATH", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding the built wheel and the locked runtime dependencies, nothing else."""
    tmp = tmp_path_factory.mktemp("wheel")
    uv = _uv()
    env = _clean_env()
    _run(
        [*uv, "build", "--offline", "--wheel", "--out-dir", tmp / "dist"], cwd=PROJECT_ROOT, env=env
    )
    (wheel,) = (tmp / "dist").glob("responsys_assets-*.whl")
    venv = tmp / "venv"
    _run([*uv, "venv", "--offline", "--python", sys.executable, venv], cwd=tmp, env=env)
    locked = {**env, "UV_PROJECT_ENVIRONMENT": str(venv)}
    _run(
        [*uv, "sync", "--frozen", "--offline", "--no-dev", "--no-install-project"],
        cwd=PROJECT_ROOT,
        env=locked,
    )
    python = venv / "bin" / "python"
    _run([*uv, "pip", "install", "--offline", "--no-deps", "--python", python, wheel], cwd=tmp)
    return venv


def test_installed_wheel_applies_its_own_migrations(installed, tmp_path):
    script = (
        "import json, duckdb, responsys_assets\n"
        "from responsys_assets.warehouse import apply_migrations\n"
        "conn = duckdb.connect('w.duckdb')\n"
        "first = apply_migrations(conn)\n"
        "again = apply_migrations(conn)\n"
        "tables = sorted(f'{s}.{t}' for s, t in conn.execute("
        "'select schema_name, table_name from duckdb_tables()').fetchall())\n"
        "print(json.dumps({'package': responsys_assets.__file__, 'first': first,"
        " 'again': again, 'tables': tables}))\n"
    )
    out = _run([installed / "bin" / "python", "-c", script], cwd=tmp_path, env=_clean_env())
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(result["package"]).is_relative_to(installed), result["package"]
    shipped = sorted(p.name.removesuffix(".sql") for p in MIGRATIONS.glob("[0-9]*.sql"))
    assert result["first"] == shipped and len(shipped) >= 8
    assert result["again"] == []
    assert {"responsys.events", "responsys.ingested_files", "meta.schema_migrations"} <= set(
        result["tables"]
    )


def test_installed_wheel_runs_the_pipeline_against_the_sandbox(installed, tmp_path):
    """No variable but the sample size: defaults resolve in the working directory, the example
    config and dagster.yaml come from the wheel."""
    env = _clean_env(RESPONSYS_SANDBOX_CONTACTS="300", RESPONSYS_SANDBOX_DAYS="3")
    out = _run([installed / "bin" / "responsys-assets", "run"], cwd=tmp_path, env=env, timeout=600)
    assert "mode: sandbox" in out.stdout
    assert "all parts succeeded" in out.stdout, out.stdout
    files = next(line for line in out.stdout.splitlines() if line.startswith("files ingested"))
    ingested, total = files.split(": ")[1].split(" (")[0].split(" of ")
    assert int(ingested) == int(total) > 0
    assert (tmp_path / "warehouse" / "warehouse.duckdb").is_file()
    assert (tmp_path / ".dagster_home" / "dagster.yaml").read_text() == (
        PROJECT_ROOT / "dagster.yaml"
    ).read_text()
