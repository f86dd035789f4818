"""An audience of contacts in a real DuckDB warehouse and the matching Responsys account in the
emulator, for export scenarios. Suppressed contacts are opted *in* at the emulator, so only the
pipeline's own consent filter can keep them from being contacted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from responsys_assets.config import (
    CampaignTriggerExport,
    CustomEventExport,
    MergeRuleConfig,
    ProfileListExport,
)
from responsys_assets.defs.exports.handlers.registry import handler_for
from responsys_assets.defs.exports.runner import ExportReport, run_export
from responsys_assets.sandbox.store import Store
from tests.reliability.support import opted_out_contacted, triggers_twice

USER, PASSWORD = "reliability_user", "Reliability-Pa55-word!"
LIST, FOLDER, CAMPAIGN, EVENT, AUDIENCE = "CONTACTS_LIST", "Audiences", "Win_Back", "Vip", "vip"
FIRST_RIID = 5001

EXPORTS = [
    CampaignTriggerExport(
        type="campaign_trigger",
        name="win_back",
        audience=AUDIENCE,
        campaign=CAMPAIGN,
        list=LIST,
        folder=FOLDER,
        backfill=True,
        merge_rule=MergeRuleConfig(insert_on_no_match=False),
        optional_data={"SCORE": "recency_score"},
    ),
    CustomEventExport(
        type="custom_event",
        name="vip_event",
        audience=AUDIENCE,
        event=EVENT,
        list=LIST,
        folder=FOLDER,
        properties={"SCORE": "recency_score"},
    ),
    ProfileListExport(
        type="profile_list",
        name="vip_list",
        audience=AUDIENCE,
        list=LIST,
        folder=FOLDER,
        merge_rule=MergeRuleConfig(insert_on_no_match=False),
    ),
]


def email(riid: int) -> str:
    return f"contact{riid}@example.com"


def suppressed_riids(contacts: int) -> set[int]:
    return {FIRST_RIID + i for i in range(contacts) if i % 5 == 2}


def seed_emulator(store: Store, contacts: int) -> None:
    store.ensure_folder(FOLDER)
    store.ensure_list(LIST, FOLDER)
    store.ensure_campaign(CAMPAIGN, list_name=LIST)
    store.ensure_custom_event(EVENT)
    rows = []
    for i in range(contacts):
        riid = FIRST_RIID + i
        rows.append(
            {
                "riid": riid,
                "email_address": email(riid),
                "email_sha256_hash": hashlib.sha256(email(riid).encode()).hexdigest(),
                "customer_id": f"C-{riid}",
                "email_permission_status": "I",
            }
        )
    store.write_members(LIST, rows, [])


def seed_warehouse(path: Path, contacts: int) -> None:
    """Every contact ENTERs the audience; every fifth one is suppressed (opted out)."""
    from tests.defs.exports.warehouse_rows import add_change, add_contact, open_warehouse

    conn = open_warehouse(path)
    try:
        suppressed = suppressed_riids(contacts)
        for i in range(contacts):
            riid = FIRST_RIID + i
            key = f"riid:{riid}"
            add_contact(
                conn,
                key,
                riid=riid,
                email=email(riid),
                email_sha256=hashlib.sha256(email(riid).encode()).hexdigest(),
                customer_id=f"C-{riid}",
                suppressed=riid in suppressed,
                recency_score=i % 100,
            )
            add_change(conn, AUDIENCE, key, "ENTER", suppressed=riid in suppressed)
    finally:
        conn.close()


def run_all(conn: duckdb.DuckDBPyConnection, client, batch_size: int, log=None) -> list:
    reports: list[ExportReport] = []
    for export in EXPORTS:
        reports.append(
            run_export(
                conn,
                client,
                name=export.name,
                audience=export.audience,
                handler=handler_for(export),
                backfill=export.backfill,
                triggers=export.type == "campaign_trigger",
                batch_size=batch_size,
                log=log,
            )
        )
    return reports


def unknown_riids(conn: duckdb.DuckDBPyConnection, export: str) -> set[int]:
    """Contacts in batches parked with an unknown outcome (left for an operator to settle)."""
    rows = conn.execute(
        "select s.contact_key from exports.sent_records s join exports.ledger l "
        "on l.export = s.export and l.batch_id = s.batch_id "
        "where s.export = ? and l.outcome = 'unknown'",
        [export],
    ).fetchall()
    return {int(key.split(":", 1)[1]) for (key,) in rows}


def export_figures(store: Store, contacts: int) -> tuple[int, int]:
    """(triggers sent twice, opted-out contacts contacted)."""
    return triggers_twice(store), opted_out_contacted(store, suppressed_riids(contacts), [LIST])


def missing_deliveries(conn: duckdb.DuckDBPyConnection, store: Store, contacts: int) -> dict:
    """Per export, consenting contacts that neither reached Responsys nor wait in an unknown
    batch (should be empty after a clean re-run)."""
    wanted = {FIRST_RIID + i for i in range(contacts)} - suppressed_riids(contacts)
    merged = {m["riid"] for m in store.list_members(LIST) if m["modified_at"] != m["created_at"]}
    got = {
        "win_back": {s["riid"] for s in store.email_sends(CAMPAIGN)},
        "vip_event": {e["riid"] for e in store.custom_events(EVENT)},
        "vip_list": merged,
    }
    return {
        name: sorted(wanted - riids - unknown_riids(conn, name))
        for name, riids in got.items()
        if wanted - riids - unknown_riids(conn, name)
    }
