"""classify(): errors to stable categories for error statistics."""

from __future__ import annotations

import httpx

from responsys_assets.lib.responsys import (
    CapacityLimitExceeded,
    InvalidCredentials,
    OutcomeUnknown,
    RequestRejected,
    ResponsysThrottled,
    ResponsysTimeout,
    ResponsysUnavailable,
    RowResult,
    classify,
)


def test_classify():
    assert classify(InvalidCredentials("x")) == "invalid_credentials"
    assert classify(ResponsysTimeout("x")) == "timeout"
    assert classify(ResponsysThrottled("x")) == "throttled"
    assert classify(CapacityLimitExceeded("x")) == "capacity"
    assert classify(RequestRejected("x")) == "rejected_request"
    assert classify(ResponsysUnavailable("x")) == "unavailable"
    assert classify(OutcomeUnknown("x")) == "unknown_outcome"
    assert classify(RowResult(0, False, None, "X", "m")) == "rejected_record"
    assert classify(httpx.ReadTimeout("x")) == "timeout"
    assert classify(httpx.ConnectError("x")) == "unavailable"
    assert classify(KeyError("x")) == "other"
    assert CapacityLimitExceeded("x").resume_after == 600
