"""The production shape for the deployment tests: a sandbox and its exact copy, the lake and the
PostgreSQL-backed Dagster instance (deploy/dagster.yaml as shipped), and the facts to compare."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import duckdb

from responsys_assets.config import load_config
from responsys_assets.sandbox import SampleData, Sandbox
from responsys_assets.settings import PROJECT_ROOT
from tests.e2e.cli_support import CLI, cli_env, short_history_config
from tests.support.postgres import SUPERUSER, PostgresServer

DEPLOY_YAML = PROJECT_ROOT / "deploy" / "dagster.yaml"
DAGSTER = str(Path(CLI[0]).with_name("dagster"))

WAREHOUSE_FACTS = {
    "files": "select file_name, feed, status, row_count, rejected_count"
    " from responsys.ingested_files order by all",
    "events": "select event_type, count(*), bit_xor(hash(columns(* exclude (attributes))))"
    ", bit_xor(hash(attributes::varchar)) from responsys.events group by all order by all",
    "rejected": "select source_file, source_line, reason from responsys.rejected_rows order by all",
    "contacts": "select count(*), bit_xor(hash(riid, email, email_permission_status))"
    " from responsys.contacts",
    "memberships": "select audience, contact_key, suppressed from audiences.memberships"
    " order by all",
    "sent": "select export, contact_key, change from exports.sent_records order by all",
    "ledger": "select export, outcome, sum(records) from exports.ledger group by all order by all",
}
INGEST_FACTS = ("files", "events", "rejected", "contacts")
ACCOUNT_FACTS = {  # the emulator's SQLite: what Responsys received
    "sends": "select campaign, riid, optional_data from email_sends order by 1, 2, 3",
    "events": "select event, riid, optional_data from custom_events order by 1, 2, 3",
    "members": "select list, riid, customer_id, email_address, email_permission_status"
    " from list_members order by 1, 2",
    "pet_rows": "select list, pet, riid, fields from pet_rows order by 1, 2, 3",
    "calls": "select api, count(*) from api_calls"
    " where api not in ('login', 'rateLimit') group by api order by api",
}


def warehouse_facts(conn: duckdb.DuckDBPyConnection, names=WAREHOUSE_FACTS) -> dict[str, list]:
    return {name: conn.execute(WAREHOUSE_FACTS[name]).fetchall() for name in names}


def account_facts(sandbox: Path) -> dict[str, list]:
    db = sqlite3.connect(sandbox / "api" / "responsys_emulator.sqlite")
    try:
        return {name: db.execute(sql).fetchall() for name, sql in ACCOUNT_FACTS.items()}
    finally:
        db.close()


def twin_sandboxes(tmp: Path, config_path: Path, days: int = 3) -> tuple[Path, Path]:
    """One generated sandbox and an exact copy (files, keys, seeded account), both stopped."""
    first = tmp / "sandbox_file"
    box = Sandbox(first, load_config(config_path), SampleData(contacts=300, days=days))
    box.start()
    box.stop()
    second = tmp / "sandbox_lake"
    shutil.copytree(first, second)
    (second / "connection.json").unlink(missing_ok=True)
    return first, second


@dataclass(frozen=True)
class Deployment:
    """The environment of one lake deployment: its lake, instance and sandbox."""

    env: dict[str, str]
    home: Path
    instance_db: str


def lake_deployment(
    server: PostgresServer, folder: Path, sandbox: Path, config: Path
) -> Deployment:
    lake = server.new_lake(folder / "lake_data")
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copyfile(DEPLOY_YAML, home / "dagster.yaml")  # as shipped
    instance_db = server.create_database("dagster")
    env = cli_env(
        folder,
        RESPONSYS_CONFIG=str(config),
        RESPONSYS_SANDBOX_DIR=str(sandbox),
        RESPONSYS_WAREHOUSE=lake.location,
        RESPONSYS_LAKE_DATA_PATH=lake.data_path or "",
        RESPONSYS_WAREHOUSE_PASSWORD=server.password,
        DAGSTER_HOME=str(home),
        DAGSTER_PG_HOST=server.host,
        DAGSTER_PG_PORT=str(server.port),
        DAGSTER_PG_DB=instance_db,
        DAGSTER_PG_USERNAME=SUPERUSER,
        DAGSTER_PG_PASSWORD=server.password,
    )
    return Deployment(env=env, home=home, instance_db=instance_db)


__all__ = ["short_history_config"]
