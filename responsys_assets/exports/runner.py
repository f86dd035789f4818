"""Run one export: pending changes -> consent filter -> ledgered batches -> Responsys.

Every export type plugs in a handler that knows its API calls; this module owns what they all
share: the watermark, exactly-once bookkeeping, consent, error statistics and dry runs.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

import duckdb

from responsys_assets.exports import ledger
from responsys_assets.exports.changes import (
    PendingChange,
    latest_change_id,
    pending_changes,
    previously_sent,
    set_watermark,
    watermark,
)
from responsys_assets.resources.responsys_api import (
    CapacityLimitExceeded,
    OutcomeUnknown,
    ResponsysError,
    classify,
)


@dataclass
class SendOutcome:
    """What a handler reports for one batch."""

    sent_fields: dict[str, dict] = field(default_factory=dict)  # contact_key -> fields written
    removed: list[str] = field(default_factory=list)  # contact_keys removed in Responsys
    rejected: list[tuple[str, int | None, str, str]] = field(default_factory=list)
    api_calls: int = 0


class ExportHandler(Protocol):
    idempotent: bool  # may a batch with an unknown outcome be sent again?
    sends_exits: bool  # does an EXIT mean a call (removal) for this export?

    def prepare(self, client) -> None:
        """Create or check destination objects (PETs, tables) before sending."""

    def fields_for(self, change: PendingChange) -> dict:
        """The record as it would be written to Responsys (used by sends and dry runs)."""

    def send(self, client, batch: ledger.Batch) -> SendOutcome: ...


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
        }


def _plan(
    conn: duckdb.DuckDBPyConnection, name: str, audience: str, backfill: bool
) -> tuple[list[PendingChange], int]:
    upto = latest_change_id(conn, audience)
    after = watermark(conn, name)
    if after is None:
        after = 0 if backfill else upto
    return pending_changes(conn, name, audience, after, upto), upto


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
    changes, upto = _plan(conn, name, audience, backfill)
    report.pending = len(changes)
    before = previously_sent(conn, name)

    sendable: list[PendingChange] = []
    handled_without_call: list[PendingChange] = []
    for change in changes:
        if change.change == "ENTER" and (change.suppressed or not change.profile):
            report.suppressed += 1
            handled_without_call.append(change)
        elif change.change == "EXIT" and (
            not handler.sends_exits or change.contact_key not in before
        ):
            report.skipped_exits += 1
            handled_without_call.append(change)
        else:
            sendable.append(change)

    if dry_run:
        for change in sendable:
            after_fields = handler.fields_for(change) if change.change == "ENTER" else {}
            report.planned.append(
                {
                    "contact_key": change.contact_key,
                    "action": ("trigger" if triggers else "upsert")
                    if change.change == "ENTER"
                    else "remove",
                    "before": before.get(change.contact_key),
                    "after": after_fields,
                }
            )
            if change.change == "ENTER":
                report.triggered += triggers
                report.added += not triggers
            else:
                report.removed += 1
        report.seconds = time.perf_counter() - started
        return report

    if handled_without_call:
        # Suppressed entries and exits of never-exported contacts are settled with no call, so
        # they do not come back (a later re-entry is a new change and is judged again).
        quiet = ledger.Batch(
            name, f"nocall-{upto}-{len(handled_without_call)}", handled_without_call
        )
        ledger.begin(conn, quiet)
        ledger.settle(conn, quiet, "succeeded")

    if sendable:
        try:
            handler.prepare(client)
        except ResponsysError as exc:
            report.errors[classify(exc)] += 1
            report.stopped_by = f"{type(exc).__name__}: {exc}"
            report.seconds = time.perf_counter() - started
            return report

    for batch in ledger.make_batches(name, sendable, batch_size):
        report.batches += 1
        ledger.begin(conn, batch)
        try:
            outcome = handler.send(client, batch)
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
            break
        except ResponsysError as exc:
            report.errors[classify(exc)] += 1
            ledger.settle(conn, batch, "failed", error_class=classify(exc), error=str(exc))
            report.stopped_by = f"{type(exc).__name__}: {exc}"
            break
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
            log(f"{name}: batch {batch.batch_id} sent ({len(batch.records)} records)")

    if report.ok and not (handler.idempotent and report.batches_unknown):  # released: resend
        set_watermark(conn, name, upto)
    report.seconds = time.perf_counter() - started
    return report
