"""Responsys's documented limits (§3) and how the client stays inside them: bounded backoff
and sliding-window pacing per API."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence

REST_PREFIX = "/rest/api/v1.3"
ASYNC_PREFIX = "/rest/asyncApi/v1.3"
MAX_RECORDS_PER_CALL = 200  # §3: merges, triggers, events, batch deletes, async calls
MAX_FIELD_SELECTION_CHARS = 150  # `fs` of the retrieve calls (Oracle retrieve pages)
MAX_BODY_BYTES = 10 * 1024 * 1024  # §3: larger bodies make the gateway drop the connection
BATCH_BYTES_MARGIN = 64 * 1024  # room for the envelope (field names, merge rule) around rows
CAPACITY_RESET_SECONDS = 600.0  # §3: internal capacity resets every 10 minutes


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def allowed_per_window(limit: int, margin: float) -> int:
    """Calls we allow ourselves per window: the limit less a safety margin, at least one."""
    return max(1, math.floor(limit * (1 - margin)))


def pacing_delay(
    finished: Sequence[float], in_flight: int, now: float, allowed: int, window: float
) -> float:
    """Seconds to wait so that at most `allowed` calls fall in any `window`-second span.

    `finished` holds completion times (oldest first) of calls still inside the window; using
    completion times means the server, which saw each call earlier, never counts more."""
    recent = [t for t in finished if t > now - window]
    if len(recent) + in_flight < allowed:
        return 0.0
    if not recent:  # everything in flight: wait for one to finish, conservatively a window
        return window
    index = len(recent) + in_flight - allowed
    if index >= len(recent):
        return window
    return max(0.0, recent[index] + window - now)


class RateLimiter:
    """Sliding-window pacing per key (one key per Responsys API)."""

    def __init__(
        self,
        *,
        window: float = 60.0,
        margin: float = 0.03,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.window = window
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._finished: dict[str, deque[float]] = {}
        self._in_flight: Counter[str] = Counter()

    def acquire(self, key: str, limit: int) -> float:
        """Block until a call may start; returns the seconds waited. Pair with `release`."""
        allowed = allowed_per_window(limit, self.margin)
        waited = 0.0
        for _ in range(10_000):  # each wait lets at least one call age out of the window
            with self._lock:
                now = self._clock()
                times = self._finished.setdefault(key, deque())
                while times and times[0] <= now - self.window:
                    times.popleft()
                delay = pacing_delay(times, self._in_flight[key], now, allowed, self.window)
                if delay <= 0:
                    self._in_flight[key] += 1
                    return waited
            delay = min(delay, self.window) + 0.001
            self._sleep(delay)
            waited += delay
        raise RuntimeError(f"rate limiter for {key} did not free a slot")  # pragma: no cover

    def release(self, key: str) -> None:
        """Record that a call finished (answer, error or timeout)."""
        with self._lock:
            self._in_flight[key] = max(0, self._in_flight[key] - 1)
            self._finished.setdefault(key, deque()).append(self._clock())
