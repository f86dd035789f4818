"""Run one export: pending changes -> consent filter -> destinations -> ledgered batches.

Every export type plugs in a handler that knows its API calls; this module owns what they all
share: the watermark, exactly-once bookkeeping, consent, per-record destinations, error
statistics and dry runs.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import duckdb

from responsys_assets.defs.exports import ledger
from responsys_assets.defs.exports.changes import (
    PendingChange,
    latest_change_id,
    pending_changes,
    pending_updates,
    pinned_destinations,
    previously_sent,
    sent_destinations,
    set_watermark,
    watermark,
)
from responsys_assets.defs.exports.destinations import (
    Destination,
    InvalidDestination,
    configured,
    describe,
    resolve,
    routed,
    to_json,
)
from responsys_assets.defs.exports.handlers.base import ExportHandler, SendOutcome
from responsys_assets.lib.responsys import (
    CapacityLimitExceeded,
    OutcomeUnknown,
    ResponsysError,
    classify,
)


@dataclass
class ExportReport:
    export: str
    dry_run: bool = False
    pending: int = 0
    added: int = 0
    removed: int = 0
    triggered: int = 0
    suppressed: int = 0
    skipped_exits: int = 0
    rejected: int = 0
    batches: int = 0
    batches_unknown: int = 0
    api_calls: int = 0
    seconds: float = 0.0
    errors: Counter = field(default_factory=Counter)
    stopped_by: str | None = None
    recovered: int = 0
    planned: list[dict] = field(default_factory=list)  # dry run: row-by-row changes
    transport: str | None = None  # "rest" or "file", for handlers with a file_import
    transport_reason: str = ""
    warnings: list[str] = field(default_factory=list)  # logged as warnings by the asset
    details: dict = field(default_factory=dict)  # handler-specific metadata (files, side PETs)

    @property
    def ok(self) -> bool:
        return self.stopped_by is None

    def metadata(self) -> dict:
        return {
            "pending_changes": self.pending,
            "records_added_or_updated": self.added,
            "records_removed": self.removed,
            "records_triggered": self.triggered,
            "suppressed_not_sent": self.suppressed,
            "records_rejected": self.rejected,
            "batches": self.batches,
            "batches_outcome_unknown": self.batches_unknown,
            "api_calls": self.api_calls,
            "records_per_call": round(
                (self.added + self.removed + self.triggered) / self.api_calls, 1
            )
            if self.api_calls
            else 0.0,
            "error_statistics": dict(self.errors),
            "seconds": round(self.seconds, 3),
            **(
                {"transport": self.transport, "transport_reason": self.transport_reason}
                if self.transport
                else {}
            ),
            **({"warnings": self.warnings} if self.warnings else {}),
            **self.details,
        }


def _plan(
    conn: duckdb.DuckDBPyConnection, name: str, audience: str, backfill: bool
) -> tuple[list[PendingChange], int]:
    upto = latest_change_id(conn, audience)
    after = watermark(conn, name)
    if after is None:
        after = 0 if backfill else upto
    return pending_changes(conn, name, audience, after, upto), upto


def _route(
    conn: duckdb.DuckDBPyConnection, name: str, export, changes: list[PendingChange]
) -> tuple[list[tuple[PendingChange, Destination]], list[tuple[PendingChange, str]]]:
    """Each change with its destination, and the changes refused for an invalid override value.

    With `destination_override`, a resend goes where its batch was pinned, and an EXIT or UPDATE
    follows the member to where their last write went; an entry is resolved from its profile.
    Without it, every record goes to the configured names.
    """
    if not export.destination_override:
        home = configured(export)
        return [(change, home) for change in changes], []
    pinned = pinned_destinations(conn, name)
    followed = sent_destinations(conn, name)
    placed: list[tuple[PendingChange, Destination]] = []
    refused: list[tuple[PendingChange, str]] = []
    for change in changes:
        destination = pinned.get((change.contact_key, change.record_id))
        if destination is None and change.change != "ENTER":
            destination = followed.get(change.contact_key)
        try:
            placed.append(
                (change, destination or resolve(export, change.contact_key, change.profile))
            )
        except InvalidDestination as exc:
            refused.append((change, str(exc)))
    return placed, refused


def _batches(
    name: str, changes: list[PendingChange], size: int, destination: Destination, pinned: bool
) -> list[ledger.Batch]:
    """Entries and exits by change order, then UPDATEs, at most `size` records a batch.

    `pinned`: the export resolves destinations per record, so the ledger keeps each record's.
    """
    updates = [c for c in changes if c.change == "UPDATE"]
    others = [c for c in changes if c.change != "UPDATE"]
    return ledger.make_batches(
        name, others, size, destination=destination, pinned=pinned
    ) + ledger.make_batches(
        name, updates, size, kind="update-", destination=destination, pinned=pinned
    )


_ACTIONS = {"ENTER": "upsert", "UPDATE": "update", "EXIT": "remove"}


def run_export(
    conn: duckdb.DuckDBPyConnection,
    client,
    *,
    name: str,
    audience: str,
    handler: ExportHandler,
    backfill: bool,
    triggers: bool = False,
    dry_run: bool = False,
    batch_size: int = 200,
    log=None,
) -> ExportReport:
    """Send what changed since the last successful export; resumable after any crash."""
    started = time.perf_counter()
    report = ExportReport(export=name, dry_run=dry_run)
    if not dry_run:
        report.recovered = ledger.recover_interrupted(conn, name, idempotent=handler.idempotent)
    files = handler.file_import  # hybrid transport (file_import.py)
    if files and not dry_run:
        files.deliver_outbox(conn, report)  # a file an earlier run settled goes before anything
        if not report.ok:
            report.seconds = time.perf_counter() - started
            return report
    changes, upto = _plan(conn, name, audience, backfill)
    updates = handler.sends_updates  # UPDATEs compare every member
    before = previously_sent(conn, name, None if updates else {c.contact_key for c in changes})
    if updates:
        changes += pending_updates(
            conn,
            name,
            audience,
            upto,
            watched=handler.update_fields,
            before=before,
            busy={change.contact_key for change in changes},
        )
    report.pending = len(changes)

    sendable: list[PendingChange] = []
    handled_without_call: list[PendingChange] = []
    for change in changes:
        if change.change in ("ENTER", "UPDATE") and (change.suppressed or not change.profile):
            report.suppressed += 1
            handled_without_call.append(change)
        elif change.change == "EXIT" and (
            not handler.sends_exits or change.contact_key not in before
        ):
            report.skipped_exits += 1
            handled_without_call.append(change)
        else:
            sendable.append(change)

    placed, refused = _route(conn, name, handler.export, sendable)
    report.rejected += len(refused)
    report.errors["invalid_destination"] += len(refused)
    if not refused:
        del report.errors["invalid_destination"]
    if handler.chooses_transport:
        report.transport, report.transport_reason = (
            files.transport_for(len(placed)) if files else ("rest", "no file_import configured")
        )

    if dry_run:
        for change, destination in placed:
            action = _ACTIONS[change.change]
            report.planned.append(
                {
                    "contact_key": change.contact_key,
                    "action": "trigger" if triggers and action == "upsert" else action,
                    "destination": destination,
                    "before": before.get(change.contact_key),
                    "after": handler.fields_for(change) if change.change != "EXIT" else {},
                }
            )
            if change.change == "EXIT":
                report.removed += 1
            elif triggers:
                report.triggered += 1
            else:
                report.added += 1
        for change, reason in refused:
            report.planned.append(
                {"contact_key": change.contact_key, "action": "reject", "reason": reason}
            )
        report.seconds = time.perf_counter() - started
        return report

    if handled_without_call or refused:
        # Suppressed entries and exits of never-exported contacts are settled with no call, so
        # they do not come back (a later re-entry is a new change and is judged again); so are
        # records refused for an invalid destination, which are recorded as rejected.
        quiet = ledger.Batch(
            name,
            f"nocall-{upto}-{len(handled_without_call) + len(refused)}",
            handled_without_call + [change for change, _ in refused],
        )
        ledger.begin(conn, quiet)
        ledger.settle(
            conn,
            quiet,
            "succeeded",
            rejected=[
                (c.contact_key, c.profile.get("riid"), "invalid_destination", reason)
                for c, reason in refused
            ],
        )

    if report.transport == "file":
        left = {c.contact_key for c in files.send(conn, [c for c, _ in placed], report)}
        placed = [(change, where) for change, where in placed if change.contact_key in left]

    groups: dict[str, list[PendingChange]] = {}
    for change, destination in placed:
        groups.setdefault(to_json(destination), []).append(change)
    # Every destination's handler is made before anything is sent (see routed()).
    senders = {key: routed(handler, json.loads(key)) for key in groups}
    for key, members in groups.items():
        going_on = _send_destination(
            conn,
            client,
            senders[key],
            json.loads(key),
            members,
            report,
            name=name,
            batch_size=batch_size,
            triggers=triggers,
            log=log,
        )
        if not going_on:
            break
    if report.ok:
        handler.follow_up(conn, client, report)  # work after the batches (side PETs)

    if report.ok and not (handler.idempotent and report.batches_unknown):  # released: resend
        set_watermark(conn, name, upto)
    report.seconds = time.perf_counter() - started
    return report


def _send_destination(
    conn: duckdb.DuckDBPyConnection,
    client,
    handler: ExportHandler,
    destination: Destination,
    changes: list[PendingChange],
    report: ExportReport,
    *,
    name: str,
    batch_size: int,
    triggers: bool,
    log=None,
) -> bool:
    """Prepare one destination and send its batches; False when the whole export must stop.

    A destination that cannot be prepared, or whose batch fails, stops only that destination
    (the others still go; the watermark waits). The account's capacity limit stops them all.
    """
    try:
        handler.prepare(client)
    except ResponsysError as exc:
        report.errors[classify(exc)] += 1
        report.stopped_by = report.stopped_by or f"{type(exc).__name__}: {exc}"
        return True
    pinned = bool(handler.export.destination_override)
    # Batch k+1 travels while batch k is settled: the ledger write and the HTTP round trip take
    # about as long as each other, so overlapping them nearly doubles calls per minute. Batch
    # k+1 is begun (ledgered as pending) before it is sent, and batch k is settled before the
    # answer for k+1 is awaited, so a kill at any point leaves the ledger exactly as before.
    sent: tuple[ledger.Batch, SendOutcome] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"send-{name}") as sender:
        for batch in _batches(name, changes, batch_size, destination, pinned):
            report.batches += 1
            ledger.begin(conn, batch)
            answer = sender.submit(handler.send, client, batch)
            if sent:
                _settle_sent(
                    conn,
                    *sent,
                    report,
                    name=name,
                    destination=destination,
                    triggers=triggers,
                    log=log,
                )
                sent = None
            try:
                outcome = answer.result()
            except OutcomeUnknown as exc:
                report.errors[classify(exc)] += 1
                report.batches_unknown += 1
                ledger.settle(conn, batch, "unknown", error_class=classify(exc), error=str(exc))
                if handler.idempotent:
                    ledger.release(conn, name, batch.batch_id, resend=True)
                continue
            except CapacityLimitExceeded as exc:
                report.errors[classify(exc)] += 1
                ledger.settle(conn, batch, "failed", error_class=classify(exc), error=str(exc))
                report.stopped_by = (
                    f"account capacity limit reached; resume in {exc.resume_after:.0f} s"
                )
                return False
            except ResponsysError as exc:
                report.errors[classify(exc)] += 1
                ledger.settle(conn, batch, "failed", error_class=classify(exc), error=str(exc))
                report.stopped_by = report.stopped_by or f"{type(exc).__name__}: {exc}"
                return True
            sent = (batch, outcome)
        if sent:
            _settle_sent(
                conn, *sent, report, name=name, destination=destination, triggers=triggers, log=log
            )
    return True


def _settle_sent(
    conn: duckdb.DuckDBPyConnection,
    batch: ledger.Batch,
    outcome: SendOutcome,
    report: ExportReport,
    *,
    name: str,
    destination: Destination,
    triggers: bool,
    log=None,
) -> None:
    ledger.settle(
        conn,
        batch,
        "succeeded",
        api_calls=outcome.api_calls,
        sent_fields=outcome.sent_fields,
        removed=outcome.removed,
        rejected=outcome.rejected,
    )
    report.api_calls += outcome.api_calls
    report.rejected += len(outcome.rejected)
    for _, _, error_class, _ in outcome.rejected:
        report.errors[error_class] += 1
    report.removed += len(outcome.removed)
    delivered = len(outcome.sent_fields)
    if triggers:
        report.triggered += delivered
    else:
        report.added += delivered
    if log:
        where = f" to {describe(destination)}" if destination else ""
        log(f"{name}: batch {batch.batch_id} sent{where} ({len(batch.records)} records)")
