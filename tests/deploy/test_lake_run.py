"""The production shape, run for real: a DuckLake on PostgreSQL and the Dagster instance in
PostgreSQL, configured by `deploy/dagster.yaml` exactly as shipped.

Two `responsys-assets run` processes start together on copies of one sandbox (same files, same
keys, same seeded account): one on a DuckDB file with the default instance, one on the lake
with the PostgreSQL instance. Everything they produce must be the same: the files loaded, the
events (a checksum of every column), the audiences, and what Responsys received.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from responsys_assets.settings import PROJECT_ROOT, parse_warehouse
from responsys_assets.warehouse import open_connection
from tests.deploy.support import (
    DEPLOY_YAML,
    WAREHOUSE_FACTS,
    account_facts,
    short_history_config,
    twin_sandboxes,
    warehouse_facts,
)
from tests.e2e.cli_support import CLI, cli_env

RUN_TIMEOUT_SECONDS = 900


@pytest.fixture
def sandboxes(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "file").mkdir()
    (tmp_path / "lake").mkdir()
    return twin_sandboxes(tmp_path, short_history_config(tmp_path))


def test_a_run_on_the_lake_and_the_postgres_instance_equals_a_run_on_a_file(
    postgres_server, sandboxes, tmp_path
):
    sandbox_file, sandbox_lake = sandboxes
    file_env = cli_env(tmp_path / "file", RESPONSYS_SANDBOX_DIR=str(sandbox_file))
    lake = postgres_server.new_lake(tmp_path / "lake" / "data")
    home = tmp_path / "lake" / "dagster_home"
    home.mkdir()
    shutil.copyfile(DEPLOY_YAML, home / "dagster.yaml")  # as shipped
    lake_env = cli_env(
        tmp_path / "lake",
        RESPONSYS_SANDBOX_DIR=str(sandbox_lake),
        RESPONSYS_WAREHOUSE=lake.location,
        RESPONSYS_LAKE_DATA_PATH=lake.data_path,
        RESPONSYS_WAREHOUSE_PASSWORD=postgres_server.password,
        DAGSTER_HOME=str(home),
        DAGSTER_PG_HOST=postgres_server.host,
        DAGSTER_PG_PORT=str(postgres_server.port),
        DAGSTER_PG_DB=postgres_server.create_database("dagster"),
        DAGSTER_PG_USERNAME="lake_admin",
        DAGSTER_PG_PASSWORD=postgres_server.password,
    )
    dagster = str(Path(CLI[0]).with_name("dagster"))
    pool = subprocess.run(
        [dagster, "instance", "concurrency", "set", "warehouse_ingest", "3"],
        env=lake_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pool.returncode == 0, pool.stderr[-3000:]

    logs = {name: tmp_path / f"{name}.log" for name in ("file", "lake")}
    processes = {}
    for name, env in (("file", file_env), ("lake", lake_env)):
        with open(logs[name], "wb") as out:  # started together: audiences share a clock
            processes[name] = subprocess.Popen(
                [*CLI, "run"], env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT
            )
    try:
        for name, process in processes.items():
            code = process.wait(RUN_TIMEOUT_SECONDS)
            assert code == 0, f"{name} run failed:\n{logs[name].read_text()[-4000:]}"
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(30)

    on_file = open_connection(Path(file_env["RESPONSYS_WAREHOUSE"]), read_only=True)
    on_lake = open_connection(
        parse_warehouse(lake_env["RESPONSYS_WAREHOUSE"]),
        read_only=True,
        password=postgres_server.password,
    )
    file_facts, lake_facts = warehouse_facts(on_file), warehouse_facts(on_lake)
    assert file_facts["files"] and file_facts["events"] and file_facts["sent"]
    for name in WAREHOUSE_FACTS:
        assert lake_facts[name] == file_facts[name], name
    assert account_facts(sandbox_lake) == account_facts(sandbox_file)
    assert account_facts(sandbox_file)["sends"], "the campaign trigger sent nothing to compare"

    # The instance really is PostgreSQL, and holds the runs and the pool limit.
    runs = postgres_server.psql("select count(*) from runs", dbname=lake_env["DAGSTER_PG_DB"])
    assert int(runs) >= len(file_facts["files"])
    limit = postgres_server.psql(
        "select count(*) from concurrency_limits where concurrency_key = 'warehouse_ingest'"
        ' and "limit" = 3',
        dbname=lake_env["DAGSTER_PG_DB"],
    )
    assert limit == "1"
