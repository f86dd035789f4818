"""Pacing under a per-minute limit, and bounded backoff with jitter."""

from __future__ import annotations

import random

import pytest

from responsys_assets.lib.responsys import (
    RateLimiter,
    allowed_per_window,
    backoff_delay,
    pacing_delay,
)


def test_allowed_per_window_keeps_a_small_margin():
    assert allowed_per_window(60, 0.03) == 58
    assert allowed_per_window(1000, 0.03) == 970
    assert allowed_per_window(1, 0.03) == 1


def test_pacing_delay():
    assert pacing_delay([], 0, now=100.0, allowed=2, window=60) == 0
    assert pacing_delay([50.0], 0, now=100.0, allowed=2, window=60) == 0
    assert pacing_delay([50.0, 70.0], 0, now=100.0, allowed=2, window=60) == pytest.approx(10.0)
    assert pacing_delay([50.0, 70.0], 1, now=100.0, allowed=2, window=60) == pytest.approx(30.0)
    assert pacing_delay([10.0, 20.0], 0, now=100.0, allowed=2, window=60) == 0  # aged out


class FakeClock:
    """A clock the limiter under test advances through its own sleep calls."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_limiter_never_exceeds_and_achieves_90_percent():
    clock = FakeClock()
    limiter = RateLimiter(window=60.0, margin=0.03, clock=clock, sleep=clock.sleep)
    finished = []
    start = clock()
    for _ in range(400):
        limiter.acquire("merge", 60)
        clock.now += 0.05  # the call takes 50 ms
        limiter.release("merge")
        finished.append(clock())
    # Any 60 s span holds at most 58 completions (the server counts arrivals, which are earlier).
    for i, t in enumerate(finished):
        in_window = [u for u in finished[i:] if u < t + 60.0]
        assert len(in_window) <= 58
    rate_per_minute = len(finished) / ((finished[-1] - start) / 60.0)
    assert rate_per_minute >= 0.9 * 60


def test_backoff_delay_is_bounded_with_jitter():
    rng = random.Random(1)
    for attempt in range(1, 12):
        delay = backoff_delay(attempt, 1.0, 60.0, rng)
        ceiling = min(60.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
