"""REST API faults at a random call (several seeds): throttling, the account capacity limit, an
expired token, 5xx answers, timeouts and the connection lost after the request was sent. Each
export runs through the fault, then again; no trigger goes out twice, no opted-out contact is
contacted, and every consenting contact is delivered or parked for an operator."""

from __future__ import annotations

import random
import shutil
import time

import duckdb
import httpx
import pytest

from responsys_assets.lib.responsys import ResponsysClient
from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings
from tests.reliability.exports_setup import (
    PASSWORD,
    USER,
    export_figures,
    missing_deliveries,
    run_all,
    seed_emulator,
    seed_warehouse,
    suppressed_riids,
)

pytestmark = pytest.mark.reliability
CATEGORY = "fault: REST API"
CONTACTS = 60
BATCH = 10
CLIENT_TIMEOUT = 1.0
SEEDS = [1, 2]


class FaultAtCall(httpx.HTTPTransport):
    """The real HTTP transport; before the `at`-th data call it arms a fault in the emulator."""

    def __init__(self, server: EmulatorServer, kind: str, at: int, **fault) -> None:
        super().__init__()
        self.server, self.kind, self.at, self.fault = server, kind, at, fault
        self.data_calls = 0
        self.armed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and not path.endswith(("/auth/token", "/ratelimit")):
            self.data_calls += 1
            if self.data_calls == self.at:
                self.server.faults.inject(self.kind, **self.fault)
                self.armed = True
        return super().handle_request(request)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "w.duckdb"
    seed_warehouse(path, CONTACTS)
    return path


@pytest.fixture
def warehouse(tmp_path, template):
    path = tmp_path / "w.duckdb"
    shutil.copyfile(template, path)
    return path


@pytest.fixture
def emulator(tmp_path):
    server = EmulatorServer(tmp_path / "api", EmulatorSettings(username=USER, password=PASSWORD))
    server.faults.capacity_window_seconds = 0.5
    seed_emulator(server.store, CONTACTS)
    server.start()
    yield server
    server.stop()


def client_for(server: EmulatorServer, transport=None) -> ResponsysClient:
    return ResponsysClient(
        endpoint=server.base_url,
        username=USER,
        password=PASSWORD,
        timeout=CLIENT_TIMEOUT,
        max_attempts=5,
        transport=transport,
        backoff_base_seconds=0.05,
        throttle_backoff_seconds=0.05,
    )


FAULTS = {
    "throttled": ("rate_limit", lambda rng: {"count": rng.randint(1, 3)}),
    "capacity_limit": ("capacity", lambda rng: {}),
    "expired_token": ("expired_token", lambda rng: {}),
    "http_5xx": ("server_error", lambda rng: {"count": rng.randint(1, 3)}),
    "timeout": ("slow", lambda rng: {"delay_seconds": CLIENT_TIMEOUT * 2}),
    "connection_lost_after_send": ("drop_after_send", lambda rng: {}),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_export_through_api_fault_then_rerun(fault, seed, warehouse, emulator, scenario):
    rng = random.Random(f"{fault}-{seed}")
    kind, options = FAULTS[fault]
    sendable = CONTACTS - len(suppressed_riids(CONTACTS))
    calls = 3 * -(-sendable // BATCH)
    transport = FaultAtCall(emulator, kind, rng.randint(1, calls), **options(rng))
    scenario.note = f"{kind} at data call {transport.at} of ~{calls}"
    conn = duckdb.connect(str(warehouse))
    try:
        with client_for(emulator, transport) as client:
            first = run_all(conn, client, BATCH)
        assert transport.armed, "the fault was never injected"
        if kind in ("slow", "capacity"):
            time.sleep(CLIENT_TIMEOUT * 1.5)  # let a slow request finish, a capacity window end
        emulator.faults.clear()
        with client_for(emulator) as client:
            second = run_all(conn, client, BATCH)
        twice, opted_out = export_figures(emulator.store, CONTACTS)
        scenario.figures(twice=twice, opted_out=opted_out)
        missing = missing_deliveries(conn, emulator.store, CONTACTS)
    finally:
        conn.close()
    assert all(r.ok for r in second), [r.stopped_by for r in second]
    assert (twice, opted_out) == (0, 0)
    assert not missing, f"never delivered nor parked: {missing}"
    if kind == "capacity":
        assert any(r.stopped_by for r in first), "the capacity limit must stop the export"


def test_idempotent_batch_with_unknown_outcome_is_resent(warehouse, emulator, scenario):
    """A list merge whose answer was lost is marked for resending; the next run must resend
    it (the emulator applied it, a real outage may not have)."""
    conn = duckdb.connect(str(warehouse))
    try:
        with client_for(emulator, FaultAtCall(emulator, "drop_after_send", 2 * 6 + 3)) as client:
            run_all(conn, client, BATCH)
        released = conn.execute(
            "select batch_id from exports.ledger where export = 'vip_list' and outcome = 'failed'"
        ).fetchall()
        assert released, "the dropped list merge was not released for resending"
        emulator.faults.clear()
        with client_for(emulator) as client:
            run_all(conn, client, BATCH)
        outcome = conn.execute(
            "select outcome, attempt from exports.ledger where export = 'vip_list' "
            "and batch_id = ?",
            [released[0][0]],
        ).fetchone()
        twice, opted_out = export_figures(emulator.store, CONTACTS)
        scenario.figures(twice=twice, opted_out=opted_out)
    finally:
        conn.close()
    assert outcome == ("succeeded", 2), f"released batch {released[0][0]} was not resent"
