"""The real CLI (`python -m responsys_assets run`) on a small sandbox: killed with SIGKILL during
ingest and during exports, then run again; what the runs leave behind is checked for secrets,
clear-text emails and file permissions. (Two runs at the same time: test_process_faults.py.)

The sandbox runs in the test process (as `make dev` runs it beside the pipeline), so killing the
CLI kills only the pipeline. Its list members are all set opted *in*, so only the pipeline's own
consent filter keeps suppressed contacts from being contacted."""

from __future__ import annotations

import os
import random
import re
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from responsys_assets.config import load_config
from responsys_assets.lib.landing import SIDECAR_SUFFIX
from responsys_assets.lib.pgp import Decryptor
from responsys_assets.sandbox import SampleData, Sandbox
from responsys_assets.settings import PROJECT_ROOT
from tests.reliability.support import (
    csv_data_rows,
    kill,
    opted_out_contacted,
    read_event_figures,
    triggers_twice,
    wait_for,
)

pytestmark = pytest.mark.reliability
CATEGORY = "fault: CLI process"
CLI = ["-m", "responsys_assets", "run"]
EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@example\.com")
LIST = "CONTACTS_LIST"


@dataclass
class Pipeline:
    """One sandbox + one pipeline state (warehouse, landing zone, Dagster home)."""

    folder: Path
    sandbox: Sandbox
    env: dict[str, str]
    outputs: list[Path] = field(default_factory=list)
    killed: bool = False
    returncode: int | None = None
    result: dict = field(default_factory=dict)
    source_files: list[str] = field(default_factory=list)  # Connect files, before any run
    unfinished: dict[str, object] = field(default_factory=dict)

    @property
    def warehouse(self) -> Path:
        return self.folder / "warehouse.duckdb"

    @property
    def landing(self) -> Path:
        return self.folder / "landing"

    def start(self, *args: str) -> subprocess.Popen:
        log = self.folder / f"cli-{len(self.outputs)}.log"
        self.outputs.append(log)
        with open(log, "wb") as out:
            return subprocess.Popen(
                [sys.executable, *CLI, *args],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def run(self, *args: str, timeout: float = 400) -> int:
        child = self.start(*args)
        try:
            return child.wait(timeout)
        finally:
            kill(child)

    def landed(self) -> int:
        if not self.landing.exists():
            return 0
        return sum(1 for p in self.landing.iterdir() if p.name.endswith(SIDECAR_SUFFIX))

    def expected_rows(self) -> dict[str, int]:
        conn = self.sandbox.connection
        outbound = Path(conn.sftp_root) / conn.sftp_remote_dir.strip("/")
        key = Path(conn.pgp_private_key_path).read_text()
        expected = {}
        with Decryptor(key, conn.pgp_passphrase) as decryptor:
            for name in self.source_files:
                path = plain = outbound / name
                if path.name.endswith(".gpg"):
                    plain = self.folder / "plain.tmp"
                    decryptor.decrypt_file(path, plain, name=path.name)
                expected[path.name] = csv_data_rows(plain)
        return expected

    def figures(self) -> dict[str, int]:
        lost, duplicated = read_event_figures(self.warehouse, self.expected_rows())
        with duckdb.connect(str(self.warehouse), read_only=True) as db:
            suppressed = {
                r[0]
                for r in db.execute(
                    "select riid from audiences.profiles where suppressed and riid is not null"
                ).fetchall()
            }
        store = self.sandbox.store
        return {
            "lost": lost,
            "duplicated": duplicated,
            "twice": triggers_twice(store),
            "opted_out": opted_out_contacted(store, suppressed, [LIST]),
        }

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.outputs)


def make_pipeline(folder: Path) -> Pipeline:
    folder.mkdir(parents=True, exist_ok=True)
    text = (PROJECT_ROOT / "responsys_assets/example_config.yaml").read_text()
    config_path = folder / "config.yaml"
    config_path.write_text(text.replace("audience: lapsing", "audience: engaged"))
    config = load_config(config_path)
    sandbox = Sandbox(folder / "sandbox", config, SampleData(contacts=80, days=1, seed=5))
    sandbox.start()
    with sandbox.store.transaction() as db:
        db.execute("update list_members set email_permission_status = 'I'")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONSYS_")}
    env.update(
        {
            "RESPONSYS_CONFIG": str(config_path),
            "RESPONSYS_WAREHOUSE": str(folder / "warehouse.duckdb"),
            "RESPONSYS_LANDING_DIR": str(folder / "landing"),
            "RESPONSYS_SANDBOX_DIR": str(folder / "sandbox"),
            "DAGSTER_HOME": str(folder / "dagster_home"),
        }
    )
    outbound = Path(sandbox.connection.sftp_root) / sandbox.connection.sftp_remote_dir.strip("/")
    return Pipeline(folder, sandbox, env, source_files=sorted(p.name for p in outbound.iterdir()))


def unfinished_runs(p: Pipeline) -> dict[str, object]:
    """What a killed run may leave in the Dagster instance: runs still in progress, and the
    DuckDB pool slot that would make every later run wait for ever."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(p.folder / "dagster_home")) as instance:
        in_progress = instance.get_run_records(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
        )
        return {
            "in_progress": sorted(r.dagster_run.job_name for r in in_progress),
            "holding_slots": sorted(instance.event_log_storage.get_concurrency_run_ids()),
        }


def files_on_server(p: Pipeline) -> int:
    conn = p.sandbox.connection
    return len(list((Path(conn.sftp_root) / conn.sftp_remote_dir.strip("/")).iterdir()))


def test_cli_sigkill_during_ingest_then_rerun(tmp_path, scenario):
    p = make_pipeline(tmp_path)
    try:
        total = files_on_server(p)
        target = random.Random(1).randint(1, total - 2)
        child = p.start()
        try:
            wait_for(lambda: p.landed() >= target, 300, f"{target} files landed", 0.02)
        finally:
            assert kill(child), "the run ended before the kill"
        scenario.note = f"killed after {p.landed()} of {total} files landed"
        p.run(timeout=150)
        figures = p.figures()
        unfinished = unfinished_runs(p)
    finally:
        p.sandbox.stop()
    scenario.figures(**figures)
    assert figures == {"lost": 0, "duplicated": 0, "twice": 0, "opted_out": 0}, p.log()
    assert unfinished == {"in_progress": [], "holding_slots": []}, p.log()


@pytest.fixture(scope="module")
def killed_during_exports(tmp_path_factory) -> Pipeline:
    """A run killed right after its first export calls, then a verbose run to completion."""
    p = make_pipeline(tmp_path_factory.mktemp("cli-export"))
    rng = random.Random(2)
    try:
        child = p.start()
        try:

            def exporting() -> bool:
                calls = p.sandbox.store.api_calls()
                return any(c["api"] not in ("login", "rateLimit") for c in calls)

            wait_for(exporting, 150, "the first export call", 0.05)
            time.sleep(rng.uniform(0, 1.0))
        finally:
            p.killed = kill(child)
        # Well under the test timeout, so a run that hangs fails with its own log.
        p.returncode = p.run("-v", timeout=150)
        p.result = p.figures()
        p.unfinished = unfinished_runs(p)
        yield p
    finally:
        p.sandbox.stop()


def test_cli_sigkill_during_exports_then_rerun(killed_during_exports, scenario):
    p = killed_during_exports
    scenario.figures(**p.result)
    scenario.note = "killed at a random point after the first export call"
    assert p.killed, "the run ended before the kill"
    assert p.returncode == 0, p.log()
    assert p.result == {"lost": 0, "duplicated": 0, "twice": 0, "opted_out": 0}
    assert p.unfinished == {"in_progress": [], "holding_slots": []}


def _secrets(p: Pipeline) -> dict[str, str]:
    conn = p.sandbox.connection
    ssh_key = Path(conn.sftp_private_key_path).read_text().splitlines()
    pgp_key = Path(conn.pgp_private_key_path).read_text().splitlines()
    body = [line for line in pgp_key if len(line) > 40]
    return {
        "api password": conn.api_password,
        "pgp passphrase": conn.pgp_passphrase or "",
        "ssh private key": ssh_key[len(ssh_key) // 2],
        "pgp private key": body[len(body) // 2],
    }


def _captured(p: Pipeline) -> dict[str, bytes]:
    """Everything a user or operator sees: CLI output, the Dagster instance (runs, event logs,
    metadata: what the UI shows), and the warehouse."""
    out = {str(path): path.read_bytes() for path in p.outputs}
    for path in (p.folder / "dagster_home").rglob("*"):
        if path.is_file():
            out[str(path)] = path.read_bytes()
    return out


def _warehouse_text(p: Pipeline) -> str:
    with duckdb.connect(str(p.warehouse), read_only=True) as db:
        columns = db.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type in ('VARCHAR', 'JSON')"
        ).fetchall()
        parts = []
        for schema, table, column in columns:
            rows = db.execute(f'select "{column}"::varchar from {schema}.{table}').fetchall()
            parts.extend(str(r[0]) for r in rows)
    return "\n".join(parts)


def test_secrets_never_in_logs_metadata_ui_or_warehouse(killed_during_exports, scenario):
    p = killed_during_exports
    captured = _captured(p)
    warehouse = _warehouse_text(p)
    found = [
        f"{what} in {where}"
        for what, secret in _secrets(p).items()
        if secret
        for where, data in [*captured.items(), ("warehouse", warehouse.encode())]
        if secret.encode() in data
    ]
    scenario.note = f"grepped {len(captured)} outputs and every text column of the warehouse"
    assert not found, found


def test_emails_not_in_logs_in_clear(killed_during_exports, scenario):
    p = killed_during_exports
    leaks = {
        where: sorted({m.decode() for m in EMAIL.findall(data)})[:3]
        for where, data in _captured(p).items()
        if EMAIL.search(data)
    }
    scenario.note = f"{len(leaks)} output(s) with a clear-text email"
    assert not leaks, leaks


def test_landing_zone_and_warehouse_are_owner_only(killed_during_exports, scenario):
    p = killed_during_exports
    paths = [p.landing, *p.landing.rglob("*"), *p.folder.glob("warehouse.duckdb*")]
    loose = [
        f"{path.relative_to(p.folder)} {stat.filemode(path.stat().st_mode)}"
        for path in paths
        if path.stat().st_mode & 0o077
    ]
    scenario.note = f"{len(paths)} paths checked"
    assert len(paths) > 5
    assert not loose, loose
