"""The deployment, as production runs it: the Dagster webserver and daemon on the PostgreSQL
instance (deploy/dagster.yaml as shipped), run workers launched by the daemon, the warehouse on a
DuckLake in the same PostgreSQL server, the sandbox's SFTP and API in their own process.

Files appear; the sensor asks for a run per file and at least three ingest at once; the
audiences follow the events and the schedules fire the exports. What the deployment loaded
equals a single `responsys-assets run` over a copy of the same sandbox, its audiences end the
same, and no trigger goes out twice. Every process is started here, on 127.0.0.1, and stopped by
its pid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from responsys_assets.keys import INGEST_JOB
from responsys_assets.settings import PROJECT_ROOT, parse_warehouse
from responsys_assets.warehouse import open_connection
from tests.deploy.support import (
    DAGSTER,
    INGEST_FACTS,
    lake_deployment,
    short_history_config,
    twin_sandboxes,
    warehouse_facts,
)
from tests.e2e.cli_support import CLI, cli_env

PARALLEL_FILES = 3
LOADED_WITHIN_SECONDS = 600
EXPORTED_WITHIN_SECONDS = 420
STOP_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the process group we started (the daemon's threads, the webserver's code
        server), by pid; SIGKILL if it lingers."""
        if self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(STOP_SECONDS)


def _start(name: str, args: list[str], env: dict[str, str], folder: Path) -> Process:
    log = folder / f"{name}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            args,
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: stopped with everything it spawned
        )
    return Process(name, popen, log)


def _fast_config(folder: Path) -> Path:
    """The CLI tests' config on a production cadence squeezed into minutes."""
    config = yaml.safe_load(short_history_config(folder).read_text())
    config.setdefault("ingest", {}).update(settle_seconds=0, sensor_interval_seconds=30)
    config.setdefault("audiences", {})["evaluate_every_minutes"] = 1
    for export in config["exports"]:
        export["cron"] = "* * * * *"
    path = folder / "deploy_config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = best = 0
    for _, step in edges:
        running += step
        best = max(best, running)
    return best


def _wait(what: str, condition, seconds: float, processes: list[Process], every: float = 2.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in processes:
            if process.popen.poll() is not None:
                pytest.fail(f"{process.name} exited while waiting for {what}\n{process.tail()}")
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"{what}: not within {seconds:.0f} s\n" + "\n".join(p.tail() for p in processes))


@pytest.mark.timeout(1500)
def test_the_deployment_ingests_in_parallel_exports_on_schedule_and_matches_one_process(
    postgres_server, tmp_path, monkeypatch
):
    import dagster as dg

    (tmp_path / "file").mkdir()

    config = _fast_config(tmp_path)
    sandbox_file, sandbox_lake = twin_sandboxes(tmp_path, config, days=2)
    deployment = lake_deployment(postgres_server, tmp_path / "lake", sandbox_lake, config)
    env = deployment.env
    files = sorted(
        p.name for p in (sandbox_lake / "sftp").rglob("*") if p.is_file() and p.suffix != ".ready"
    )
    pool = subprocess.run(
        [DAGSTER, "instance", "concurrency", "set", "warehouse_ingest", str(PARALLEL_FILES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pool.returncode == 0, pool.stderr[-3000:]

    port = _free_port()
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    processes = [_start("sandbox", [*CLI, "sandbox"], env, tmp_path)]
    try:
        _wait(
            "the sandbox", lambda: (sandbox_lake / "connection.json").is_file(), 60, processes, 0.2
        )
        processes.append(
            _start(
                "daemon",
                [str(Path(DAGSTER).with_name("dagster-daemon")), "run", "-w", workspace],
                env,
                tmp_path,
            )
        )
        processes.append(
            _start(
                "webserver",
                [
                    str(Path(DAGSTER).with_name("dagster-webserver")),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-w",
                    workspace,
                ],
                env,
                tmp_path,
            )
        )
        lake = parse_warehouse(env["RESPONSYS_WAREHOUSE"], env["RESPONSYS_LAKE_DATA_PATH"])

        def loaded() -> int:
            try:
                conn = open_connection(lake, read_only=True, password=postgres_server.password)
            except Exception:  # noqa: BLE001 - not created yet
                return 0
            try:
                return conn.execute(
                    "select count(*) from responsys.ingested_files where status = 'loaded'"
                ).fetchone()[0]
            except Exception:  # noqa: BLE001 - not migrated yet
                return 0
            finally:
                conn.close()

        _wait("every file loaded", lambda: loaded() >= len(files), LOADED_WITHIN_SECONDS, processes)

        for name in (k for k in env if k.startswith("DAGSTER_")):
            monkeypatch.setenv(name, env[name])  # this process reads the same instance
        with dg.DagsterInstance.get() as instance:

            def ingest_spans() -> list[tuple[float, float]]:
                records = instance.get_run_records(
                    dg.RunsFilter(job_name=INGEST_JOB, statuses=[dg.DagsterRunStatus.SUCCESS])
                )
                return [(r.start_time, r.end_time) for r in records if r.start_time and r.end_time]

            _wait(
                "a successful ingest run per file",
                lambda: len(ingest_spans()) >= len(files),
                120,
                processes,
            )
            spans = ingest_spans()
            overlap = _max_overlap(spans)
            print(f"ingest runs: {len(spans)}, at most {overlap} at once")
            assert len(spans) == len(files)  # one run per file: none ran twice
            assert overlap >= PARALLEL_FILES
            last_ingest = max(end for _, end in spans)

            def exported() -> bool:
                ok = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
                jobs = Counter(r.dagster_run.job_name for r in ok)
                export_jobs = [j for j in jobs if j.startswith("export_")]
                return len(export_jobs) >= 6 and all(jobs[j] >= 2 for j in export_jobs)

            _wait(
                "every export run twice by its schedule",
                exported,
                EXPORTED_WITHIN_SECONDS,
                processes,
                5,
            )
            exports = instance.get_run_records(
                dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS])
            )
            during = [
                r
                for r in exports
                if r.dagster_run.job_name.startswith("export_") and r.start_time < last_ingest
            ]
            assert during, "no export ran while files were still loading"
        graphql = httpx.post(
            f"http://127.0.0.1:{port}/graphql",
            json={"query": "{ runsOrError { ... on Runs { count } } }"},
            timeout=60,
        ).json()
        assert graphql["data"]["runsOrError"]["count"] >= len(files)
    finally:
        for process in reversed(processes):
            process.stop()

    # One process over the twin sandbox: the same files, loaded the same.
    file_env = cli_env(
        tmp_path / "file", RESPONSYS_CONFIG=str(config), RESPONSYS_SANDBOX_DIR=str(sandbox_file)
    )
    result = subprocess.run(
        [*CLI, "run"], env=file_env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    on_file = open_connection(Path(file_env["RESPONSYS_WAREHOUSE"]), read_only=True)
    on_lake = open_connection(lake, read_only=True, password=postgres_server.password)
    assert warehouse_facts(on_lake, INGEST_FACTS) == warehouse_facts(on_file, INGEST_FACTS)
    assert len(warehouse_facts(on_lake, ["files"])["files"]) == len(files)
