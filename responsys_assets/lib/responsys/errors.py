"""What can go wrong talking to Responsys, as exceptions a caller can act on (retry later, pause
the account, reconcile, fix the configuration), and `classify` for error statistics."""

from __future__ import annotations

from typing import Any

import httpx

from responsys_assets.lib.responsys.limits import CAPACITY_RESET_SECONDS
from responsys_assets.lib.responsys.models import RowResult

_ACCESS_CODES = frozenset(
    {"API_DISABLED_FOR_USER", "INSUFFICIENT_ACCESS", "ACCOUNT_SUSPENDED", "API_BLOCKED"}
)


class ResponsysError(Exception):
    """Base error: what Responsys (or the network) said, for which API; never a secret."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        error_code: str | None = None,
        detail: str | None = None,
        api: str | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.detail = detail
        self.api = api


class InvalidCredentials(ResponsysError):
    """Login refused, or a fresh token rejected: fix the API user or password."""


class ResponsysThrottled(ResponsysError):
    """API_LIMIT_EXCEEDED persisted through the bounded backoff."""


class CapacityLimitExceeded(ResponsysError):
    """INTERNAL_CAPACITY_LIMIT_EXCEEDED: pause every export of the account for `resume_after` s."""

    def __init__(self, message: str, *, resume_after: float = CAPACITY_RESET_SECONDS, **kw: Any):
        super().__init__(message, **kw)
        self.resume_after = resume_after


class ResponsysTimeout(ResponsysError):
    """A read-only call timed out on every attempt."""


class ResponsysUnavailable(ResponsysError):
    """5xx answers or network failures outlasted the retries."""


class OutcomeUnknown(ResponsysError):
    """A write was sent but no answer came: it may or may not have been applied.

    Do not resend automatically; reconcile first (e.g. retrieve the members).
    """

    def __init__(self, message: str, *, records: int = 0, request_id: str | None = None, **kw):
        super().__init__(message, **kw)
        self.records = records
        self.request_id = request_id


class RequestRejected(ResponsysError):
    """A 4xx answer such as INVALID_PARAMETER or TABLE_NOT_FOUND: resending will not help."""


class AccessDenied(RequestRejected):
    """The API user may not call this API (API_DISABLED_FOR_USER, INSUFFICIENT_ACCESS, ...)."""


class RecordRejected(ResponsysError):
    """For callers that raise per row: Responsys refused one record (see `row`)."""

    def __init__(self, message: str, *, row: RowResult, **kw: Any) -> None:
        super().__init__(message, error_code=row.error_code, **kw)
        self.row = row


class InsecureEndpoint(ResponsysError, ValueError):
    """An endpoint that would send credentials or tokens somewhere unsafe."""


def classify(exc: BaseException | RowResult) -> str:
    """Map an error (or a failed row) to a stable category for error statistics."""
    if isinstance(exc, RowResult):
        return "other" if exc.ok else "rejected_record"
    ordered: list[tuple[type[BaseException], str]] = [
        (InvalidCredentials, "invalid_credentials"),
        (OutcomeUnknown, "unknown_outcome"),
        (ResponsysTimeout, "timeout"),
        (ResponsysThrottled, "throttled"),
        (CapacityLimitExceeded, "capacity"),
        (RecordRejected, "rejected_record"),
        (RequestRejected, "rejected_request"),
        (ResponsysUnavailable, "unavailable"),
        (httpx.TimeoutException, "timeout"),
        (httpx.TransportError, "unavailable"),
    ]
    for kind, label in ordered:
        if isinstance(exc, kind):
            return label
    return "other"


def _is_token_error(code: str | None, detail: str | None) -> bool:
    """§3: a bad or expired token surfaces as UNEXPECTED_EXCEPTION 'Not a valid authentication
    token' (no dedicated code is documented)."""
    return code == "UNEXPECTED_EXCEPTION" and "authentication token" in (detail or "").lower()
