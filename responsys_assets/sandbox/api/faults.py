"""Throttling and injected faults: FaultInjector (scripted outages for the next calls) and the
per-API sliding-window rate limiter."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from responsys_assets.sandbox.api.settings import DEFAULT_RATE_LIMIT

INJECTED_FAILURE_CODE = "INJECTED_FAILURE"

FAULT_KINDS = frozenset(
    {
        "rate_limit",
        "capacity",
        "expired_token",
        "server_error",
        "slow",
        "merge_failed",
        "drop_after_send",
    }
)
# Faults that only make sense on a call that writes data.
_WRITE_FAULTS = frozenset({"merge_failed", "drop_after_send"})


@dataclass
class _Fault:
    kind: str
    remaining: int
    api: str | None
    delay_seconds: float
    record_indexes: frozenset[int]


class FaultInjector:
    """Scripted failures for the next calls, so clients can be tested against real outages.

    Each injected fault matches the next `count` calls (of one API name when `api` is given);
    `merge_failed` and `drop_after_send` only match calls that write. `expired_token` acts at once:
    every token issued so far stops working. `capacity` trips an account-wide
    INTERNAL_CAPACITY_LIMIT_EXCEEDED that lasts `capacity_window_seconds` (default 10 minutes).
    """

    def __init__(self, capacity_window_seconds: float = 600.0) -> None:
        self.capacity_window_seconds = capacity_window_seconds
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._capacity_until = 0.0
        self.token_generation = 0

    def inject(
        self,
        kind: str,
        *,
        count: int = 1,
        api: str | None = None,
        delay_seconds: float = 0.0,
        record_indexes: list[int] | None = None,
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            if kind == "expired_token":
                self.token_generation += 1
                return
            self._faults.append(
                _Fault(kind, count, api, delay_seconds, frozenset(record_indexes or [0]))
            )

    def clear(self) -> None:
        """Forget pending faults and end any capacity window."""
        with self._lock:
            self._faults.clear()
            self._capacity_until = 0.0

    def take(self, api: str, writes: bool) -> dict[str, _Fault]:
        """Consume at most one pending fault of each kind that matches this call."""
        taken: dict[str, _Fault] = {}
        with self._lock:
            for fault in list(self._faults):
                if fault.kind in taken or (fault.api is not None and fault.api != api):
                    continue
                if fault.kind in _WRITE_FAULTS and not writes:
                    continue
                taken[fault.kind] = fault
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
        return taken

    def trip_capacity(self) -> None:
        with self._lock:
            self._capacity_until = time.monotonic() + self.capacity_window_seconds

    def capacity_exceeded(self) -> bool:
        with self._lock:
            return time.monotonic() < self._capacity_until


class _RateLimiter:
    """Per-API sliding windows (one minute, as Responsys counts)."""

    def __init__(self, limits: dict[str, int], window_seconds: float = 60.0) -> None:
        self._limits = limits
        self._window = window_seconds
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, api: str) -> bool:
        now = time.monotonic()
        limit = self._limits.get(api, DEFAULT_RATE_LIMIT)
        with self._lock:
            calls = self._calls.setdefault(api, deque())
            while calls and calls[0] <= now - self._window:
                calls.popleft()
            if len(calls) >= limit:
                return False
            calls.append(now)
            return True
