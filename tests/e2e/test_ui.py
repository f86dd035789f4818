"""The Dagster UI in a real browser: `dagster dev` on the project's workspace.yaml, the embedded
sandbox on 127.0.0.1, and Debian's headless Chromium driven by Playwright (no browser download).

Screenshots go to test-artifacts/ui/ (git-ignored). Runs that the daemon starts by itself (the
SFTP sensor's, the schedules' and the automation sensor's) are held in the queue by a tag
concurrency limit in this test's dagster.yaml, so the run launched from the UI is the one that
runs; they stay visible as QUEUED, which also shows the sensor ticked under the real daemon.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from responsys_assets.config import load_config
from responsys_assets.sandbox import SampleData, Sandbox
from responsys_assets.settings import DEFAULT_CONFIG, PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "ui"
GROUPS = {"ingest": 2, "audiences": 2, "exports": 6}  # group -> number of assets
HELD_TAGS = ("dagster/sensor_name", "dagster/schedule_name", "dagster/from_automation_condition")
START_SECONDS = 240  # dagster dev loads the code location in three processes
RUN_SECONDS = 240  # one run process plus one subprocess per step, each importing the project
UI_MS = 60_000

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter, limit: 100) {
    __typename
    ... on Runs { results { runId status jobName tags { key value } } }
    ... on PythonError { message }
  }
}
"""
LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


class UIError(Exception):
    """The Dagster UI did not come up or answer as expected; carries the server's log tail."""


@dataclass
class DagsterUI:
    url: str
    process: subprocess.Popen
    log: Path
    sandbox: Sandbox

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise UIError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def runs(self, tags: dict[str, str] | None = None) -> list[dict]:
        run_filter = {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        data = self.graphql(RUNS_QUERY, {"filter": run_filter})["runsOrError"]
        if data["__typename"] != "Runs":
            raise UIError(f"runsOrError: {data}")
        return data["results"]

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dagster_home(folder: Path) -> Path:
    """The repo's dagster.yaml, plus limits that hold runs the daemon starts by itself."""
    folder.mkdir(parents=True)
    settings = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    runs = settings.setdefault("concurrency", {}).setdefault("runs", {})
    runs["tag_concurrency_limits"] = [{"key": key, "limit": 0} for key in HELD_TAGS]
    (folder / "dagster.yaml").write_text(yaml.safe_dump(settings))
    return folder


def wait_until_up(ui: DagsterUI) -> None:
    """Bounded: /server_info answers and the code location loaded without error."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if ui.process.poll() is not None:
            raise UIError(f"dagster dev exited with {ui.process.returncode}:\n{ui.log_tail()}")
        try:
            if httpx.get(f"{ui.url}/server_info", timeout=5).status_code == 200:
                entries = ui.graphql(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
                states = {e["name"]: e["locationOrLoadError"] for e in entries}
                location = states.get("responsys")
                if location and location["__typename"] == "RepositoryLocation":
                    return
                if location and location["__typename"] == "PythonError":
                    raise UIError(f"code location failed to load: {location['message']}")
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise UIError(f"dagster dev not ready after {START_SECONDS} s:\n{ui.log_tail()}")


def stop_group(process: subprocess.Popen) -> None:
    """Stop `dagster dev` and the processes it started (its own session) by its group id."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # children left behind by a slow shutdown
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> Iterator[DagsterUI]:
    tmp = tmp_path_factory.mktemp("ui")
    config = load_config(PROJECT_ROOT / DEFAULT_CONFIG)
    sandbox = Sandbox(tmp / "sandbox", config, SampleData(contacts=50, days=2))
    sandbox.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONSYS_")}
    env.update(
        {
            "RESPONSYS_SANDBOX_DIR": str(sandbox.folder),
            "RESPONSYS_WAREHOUSE": str(tmp / "warehouse.duckdb"),
            "RESPONSYS_LANDING_DIR": str(tmp / "landing"),
            "DAGSTER_HOME": str(dagster_home(tmp / "dagster_home")),
            "PYTHONUNBUFFERED": "1",
        }
    )
    port = free_port()
    log = tmp / "dagster_dev.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml"]
            + ["-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    dagster_ui = DagsterUI(f"http://127.0.0.1:{port}", process, log, sandbox)
    try:
        wait_until_up(dagster_ui)
        yield dagster_ui
    finally:
        stop_group(process)
        sandbox.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make system-deps`"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_MS)
    yield page
    context.close()


def shoot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def group_counts(body: str) -> dict[str, int]:
    """Assets per group node of the lineage graph, from the page text. A node shows its name,
    then either "N assets" or, once asset statuses have loaded, one badge per status with its
    count (the UI switches between the two a few seconds after the page opens)."""
    counts = {}
    for match in re.finditer(r"^(\w+)\n((?:\d+(?: assets?)?\n)+)", body + "\n", re.MULTILINE):
        counts[match.group(1)] = sum(int(n) for n in re.findall(r"\d+", match.group(2)))
    return counts


def test_asset_graph_shows_every_group(ui, page):
    page.goto(f"{ui.url}/asset-groups")
    # the group graph (ingest -> audiences -> exports): each node is a name and its asset count
    deadline = time.monotonic() + START_SECONDS  # a cold UI on 2 busy cores can take a minute
    while (counts := group_counts(page.inner_text("body"))) != GROUPS:
        assert time.monotonic() < deadline, f"group nodes {counts}, expected {GROUPS}"
        page.wait_for_timeout(500)
    assert shoot(page, "01_asset_groups").stat().st_size > 10_000


def test_automation_is_listed_and_switched_on(ui, page):
    from playwright.sync_api import expect

    """Every sensor and schedule is visible with a toggle that is on (switchable in the UI)."""
    page.goto(f"{ui.url}/automation")
    expected = {
        "sensors": ["sftp_file_sensor", "audiences_on_new_events"],
        "schedules": [
            "audiences_schedule",
            "feed_arrival_check_schedule",
            *(f"export_{e.name}_schedule" for e in ui.sandbox.config.exports if e.enabled),
        ],
    }
    for kind, names in expected.items():
        for name in names:
            link = page.locator(f'a[href$="/{kind}/{name}"]')
            link.wait_for()
            row = link.locator("xpath=ancestor::div[@data-index][1]")  # the list row
            toggle = row.locator('label[class*="formatSwitch"] input')  # its on/off switch
            # the switch renders before the instigator state has loaded: let it settle
            expect(toggle, f"{name} is not switched on").to_be_checked(timeout=UI_MS)
    assert page.get_by_text("Scheduled Every minute").count() == 1  # the campaign trigger
    assert page.get_by_text("Scheduled Every 10 minutes").count() == 5
    shoot(page, "02_automation")


def test_materialise_audiences_from_the_ui(ui, page):
    before = {r["runId"] for r in ui.runs()}
    page.goto(f"{ui.url}/locations/responsys/asset-groups/audiences")
    page.get_by_text("Never materialized").first.wait_for()
    page.locator("button", has_text="Materialize all").first.click()
    # the UI warns that responsys/events was never materialised; an empty warehouse is fine
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}")).wait_for()
    shoot(page, "03_launched")

    deadline = time.monotonic() + RUN_SECONDS
    run = None
    while time.monotonic() < deadline:
        new = [r for r in ui.runs({"dagster/from_ui": "true"}) if r["runId"] not in before]
        run = new[0] if new else None
        if run and run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    assert run is not None, f"no run launched from the UI:\n{ui.log_tail()}"
    assert run["status"] == "SUCCESS", f"run {run['runId']} is {run['status']}"
    assert run["jobName"] == "__ASSET_JOB"

    page.goto(f"{ui.url}/runs/{run['runId']}")
    page.get_by_text("RUN_SUCCESS").first.wait_for()  # the event log has loaded
    header = page.get_by_text("Success", exact=True).first
    header.wait_for()
    assert page.get_by_text("2 assets").first.is_visible()
    assert page.get_by_text("3 checks").first.is_visible()
    shoot(page, "04_run_succeeded")


def test_sftp_sensor_ticked_under_the_daemon(ui, page):
    """The sensor, on by default, listed the sandbox and requested one run per file."""
    files = {p.name for p in (ui.sandbox.sftp_root / "outbound").iterdir()}
    deadline = time.monotonic() + 120
    partitions: set[str] = set()
    while time.monotonic() < deadline:
        runs = ui.runs({"dagster/sensor_name": "sftp_file_sensor"})
        partitions = {
            t["value"] for r in runs for t in r["tags"] if t["key"] == "dagster/partition"
        }
        if partitions >= files:
            break
        time.sleep(2)
    assert partitions == files
    assert {r["jobName"] for r in runs} == {"ingest_file_job"}
    assert len(runs) == len(files)
    page.goto(f"{ui.url}/locations/responsys/sensors/sftp_file_sensor")
    page.get_by_text("sftp_file_sensor").first.wait_for()
    shoot(page, "05_sftp_sensor")
