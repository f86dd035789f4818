"""What a client did (calls, records, retries, pacing, errors by category), for Dagster metadata
and error statistics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ClientStats:
    """Counters for Dagster metadata and error statistics."""

    calls: Counter[str] = field(default_factory=Counter)
    records_sent: Counter[str] = field(default_factory=Counter)
    records_failed: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    retries: int = 0
    logins: int = 0
    refreshes: int = 0
    paced_seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "calls_total": sum(self.calls.values()),
            "records_sent": dict(self.records_sent),
            "records_sent_total": sum(self.records_sent.values()),
            "records_failed": dict(self.records_failed),
            "throttled": self.throttled,
            "retries": self.retries,
            "logins": self.logins,
            "refreshes": self.refreshes,
            "paced_seconds": round(self.paced_seconds, 3),
            "errors": dict(self.errors),
        }
