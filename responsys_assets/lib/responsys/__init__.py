"""Oracle Responsys REST v1.3 client: login, pacing under the account's rate limits, bounded
retries, and per-row results.

Facts come from /work/shared/reference/responsys-api.md (section numbers below refer to it).
The client is plain httpx; the Dagster resource wraps it elsewhere. One client per account
per process: its pacing only knows about its own calls.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

__all__ = [
    "AccessDenied",
    "CapacityLimitExceeded",
    "ClientStats",
    "InsecureEndpoint",
    "InvalidCredentials",
    "MAX_BODY_BYTES",
    "MAX_RECORDS_PER_CALL",
    "MergeRule",
    "OutcomeUnknown",
    "PetInfo",
    "RateLimiter",
    "Recipient",
    "RecordRejected",
    "RequestRejected",
    "ResponsysClient",
    "ResponsysError",
    "ResponsysThrottled",
    "ResponsysTimeout",
    "ResponsysUnavailable",
    "RowResult",
    "batches",
    "classify",
    "normalise_endpoint",
    "parse_recipient_results",
    "parse_record_rows",
    "validate_api_endpoint",
]

REST_PREFIX = "/rest/api/v1.3"
ASYNC_PREFIX = "/rest/asyncApi/v1.3"
MAX_RECORDS_PER_CALL = 200  # §3: merges, triggers, events, batch deletes, async calls
MAX_FIELD_SELECTION_CHARS = 150  # `fs` of the retrieve calls (Oracle retrieve pages)
MAX_BODY_BYTES = 10 * 1024 * 1024  # §3: larger bodies make the gateway drop the connection
BATCH_BYTES_MARGIN = 64 * 1024  # room for the envelope (field names, merge rule) around rows
CAPACITY_RESET_SECONDS = 600.0  # §3: internal capacity resets every 10 minutes
RESPONSYS_HOST_SUFFIXES = (
    ".responsys.net",
    ".rsys8.net",
    ".rsys9.net",
    ".responsys.ocs.oraclecloud.com",
)
QUERY_ATTRIBUTES = frozenset({"r", "e", "c", "m"})  # RIID, email, customer id, mobile
PET_FIELD_TYPES = frozenset({"STR500", "STR4000", "INTEGER", "NUMBER", "TIMESTAMP"})
LIST_KEY_COLUMNS = frozenset({"RIID_", "EMAIL_ADDRESS_", "CUSTOMER_ID_"})
_LIST_MATCH_COLUMNS = frozenset(
    {
        "RIID_",
        "CUSTOMER_ID_",
        "EMAIL_ADDRESS_",
        "MOBILE_NUMBER_",
        "EMAIL_MD5_HASH_",
        "EMAIL_SHA256_HASH_",
    }
)
_HASH_COLUMNS = frozenset({"EMAIL_MD5_HASH_", "EMAIL_SHA256_HASH_"})
_PET_MATCH_COLUMNS = frozenset(c.rstrip("_") for c in _LIST_MATCH_COLUMNS)
_ACCESS_CODES = frozenset(
    {"API_DISABLED_FOR_USER", "INSUFFICIENT_ACCESS", "ACCOUNT_SUSPENDED", "API_BLOCKED"}
)
_MEMBER_NOT_FOUND_CODES = frozenset(
    {"RECORD_NOT_FOUND", "RECIPIENT_NOT_FOUND", "NO_RECORDS_FOUND", "MEMBER_NOT_FOUND"}
)
_ASYNC_PENDING = frozenset(
    {"IN_PROGRESS", "PROCESSING_REQUEST", "REQUEST_ACCEPTED", "UNKNOWN", "QUEUED", "PENDING"}
)
_EMAIL_RE = re.compile(r"[^\s@\"',;:<>()\[\]]+@[^\s@\"',;:<>()\[\]]+\.[A-Za-z]{2,}")
_ROW_FAILURE_RE = re.compile(
    r"^(?P<prefix>MERGEFAILED|DELETEFAILED)\s*:\s*"
    r"(?:Record\s+\d+\s*=\s*)?(?:(?P<code>[A-Z][A-Z0-9_]{2,})\s*(?::|$))?"
)
_LEADING_CODE_RE = re.compile(r"^\s*([A-Z][A-Z0-9_]{2,})(?=\s*(?::|$|\s))")


_ENCODED_EMAIL_RE = re.compile(r"[^\s/?&=]+%40[^\s&\"]+")


class _RedactEmails(logging.Filter):
    """httpx logs every request URL; Responsys puts member ids (emails, for qa=e) in the query
    string, so emails are masked in those records before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message or "%40" in message:
            message = _EMAIL_RE.sub("[email]", _ENCODED_EMAIL_RE.sub("[email]", message))
            record.msg, record.args = message, ()
        return True


_EMAIL_LOG_FILTER = _RedactEmails()


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- endpoints


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_url(value: str, *, what: str) -> tuple[str, str, str]:
    """Return (scheme, host, url without trailing slash); refuse credentials, query, fragment."""
    text = value.strip()
    if not text:
        raise InsecureEndpoint(f"{what} is empty")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.username is not None or parts.password is not None:
        raise InsecureEndpoint(f"{what} must not contain a user name or password")
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("https", "http") or not host:
        raise InsecureEndpoint(f"{what} {value!r} is not an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise InsecureEndpoint(f"{what} {value!r} must not have a query or fragment")
    url = f"{scheme}://{parts.netloc}{parts.path}".rstrip("/")
    return scheme, host, url


def normalise_endpoint(value: str) -> str:
    """Turn a configured login host into a base URL: https by default, http only on loopback."""
    scheme, host, url = _split_url(value, what="Responsys endpoint")
    if scheme == "http" and not _is_loopback(host):
        raise InsecureEndpoint(
            f"Responsys endpoint {url!r} uses plain http; use https (http is only for 127.0.0.1)"
        )
    return url


def validate_api_endpoint(value: str, login_endpoint: str) -> str:
    """Check the login response's endPoint before any token is sent to it.

    https and a Responsys host are required; a loopback host (and http) only when the login
    itself went to loopback, i.e. the sandbox.
    """
    login_host = urlsplit(normalise_endpoint(login_endpoint)).hostname
    on_loopback = _is_loopback(login_host)
    scheme, host, url = _split_url(value or "", what="endPoint from the login response")
    host_l = host.lower()
    responsys_host = any(host_l.endswith(s) for s in RESPONSYS_HOST_SUFFIXES)
    if not responsys_host and not (on_loopback and _is_loopback(host)):
        raise InsecureEndpoint(
            f"login returned endPoint {url!r}, which is not a Responsys host; refusing to send "
            "the token there"
        )
    if scheme == "http" and not (on_loopback and _is_loopback(host)):
        raise InsecureEndpoint(f"login returned endPoint {url!r} with plain http; https needed")
    return url


# --------------------------------------------------------------------------- payload models


@dataclass(frozen=True)
class RowResult:
    """The outcome of one submitted row, in submission order."""

    index: int
    ok: bool
    riid: int | None
    error_code: str | None
    message: str | None


@dataclass(frozen=True)
class PetInfo:
    """A profile extension table as listed by Responsys."""

    name: str
    folder: str | None
    fields: list[tuple[str, str]]


@dataclass
class MergeRule:
    """Profile-list merge rule (§2.1); `to_json()` gives the documented camelCase object."""

    insert_on_no_match: bool = True
    update_on_match: str = "REPLACE_ALL"
    match_column_1: str = "EMAIL_ADDRESS_"
    match_column_2: str | None = None
    match_operator: str = "NONE"
    optin_value: str = "I"
    optout_value: str = "O"
    html_value: str = "H"
    text_value: str = "T"
    default_permission_status: str = "OPTOUT"
    reject_record_if_channel_empty: str | None = None

    def __post_init__(self) -> None:
        if self.update_on_match not in ("REPLACE_ALL", "NO_UPDATE"):
            raise ValueError(
                f"update_on_match must be REPLACE_ALL or NO_UPDATE, not {self.update_on_match!r}"
            )
        columns = [self.match_column_1] + ([self.match_column_2] if self.match_column_2 else [])
        for column in columns:
            if column not in _LIST_MATCH_COLUMNS:
                raise ValueError(
                    f"match column {column!r} must be one of {sorted(_LIST_MATCH_COLUMNS)}"
                )
        if len(set(columns)) != len(columns):
            raise ValueError("match_column_1 and match_column_2 must differ")
        hashes = [c for c in columns if c in _HASH_COLUMNS]
        if hashes and (len(hashes) > 1 or "EMAIL_ADDRESS_" in columns):
            raise ValueError(
                "a hash match column cannot be combined with another hash or EMAIL_ADDRESS_"
            )
        if hashes and self.insert_on_no_match:
            raise ValueError("a hash match column can only update: set insert_on_no_match=False")
        if self.match_operator not in ("NONE", "AND"):
            raise ValueError(f"match_operator must be NONE or AND, not {self.match_operator!r}")
        if self.default_permission_status not in ("OPTIN", "OPTOUT"):
            raise ValueError("default_permission_status must be OPTIN or OPTOUT")
        if self.reject_record_if_channel_empty:
            channels = [c.strip() for c in self.reject_record_if_channel_empty.split(",")]
            if not all(c in ("E", "M", "P") for c in channels):
                raise ValueError("reject_record_if_channel_empty is a comma list of E, M, P")

    @property
    def match_columns(self) -> list[str]:
        return [self.match_column_1] + ([self.match_column_2] if self.match_column_2 else [])

    def to_json(self) -> dict[str, Any]:
        return {
            "insertOnNoMatch": self.insert_on_no_match,
            "updateOnMatch": self.update_on_match,
            "matchColumnName1": self.match_column_1,
            "matchColumnName2": self.match_column_2,
            "matchColumnName3": None,
            "matchOperator": self.match_operator,
            "optinValue": self.optin_value,
            "optoutValue": self.optout_value,
            "htmlValue": self.html_value,
            "textValue": self.text_value,
            "defaultPermissionStatus": self.default_permission_status,
            "rejectRecordIfChannelEmpty": self.reject_record_if_channel_empty,
        }


def _optional_data_json(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """optionalData entries; system column names (all end with '_') are refused (§2.5)."""
    out = []
    for name, value in pairs:
        if not isinstance(name, str) or not name or name.endswith("_"):
            raise ValueError(f"optionalData name {name!r} is empty or a system column name")
        if value is not None and not isinstance(value, str):
            raise ValueError(f"optionalData {name!r} value must be a string")
        out.append({"name": name, "value": value})
    return out


@dataclass(frozen=True)
class Recipient:
    """A recipient for trigger_email / send_custom_event (§2.5, §2.6): at least one id."""

    list_name: str
    folder_name: str
    recipient_id: int | None = None
    customer_id: str | None = None
    email_address: str | None = None
    mobile_number: str | None = None
    email_md5_hash: str | None = None
    email_sha256_hash: str | None = None
    email_format: str | None = None
    optional_data: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        ids = (
            self.recipient_id,
            self.customer_id,
            self.email_address,
            self.mobile_number,
            self.email_md5_hash,
            self.email_sha256_hash,
        )
        if all(v in (None, "") for v in ids):
            raise ValueError("a Recipient needs at least one identifier")
        if self.email_format not in (None, "HTML_FORMAT", "TEXT_FORMAT"):
            raise ValueError("email_format must be HTML_FORMAT or TEXT_FORMAT")

    def to_json(self) -> dict[str, Any]:
        recipient: dict[str, Any] = {
            "recipientId": self.recipient_id,
            "customerId": self.customer_id,
            "emailAddress": self.email_address,
            "mobileNumber": self.mobile_number,
            "emailMD5Hash": self.email_md5_hash,
            "emailSHA256Hash": self.email_sha256_hash,
            "listName": {"folderName": self.folder_name, "objectName": self.list_name},
            "emailFormat": self.email_format,
        }
        return {
            "recipient": {k: v for k, v in recipient.items() if v is not None},
            "optionalData": _optional_data_json(self.optional_data),
        }


# --------------------------------------------------------------------------- pure helpers


def _dumps(body: Any) -> bytes:
    """Compact JSON with non-ASCII escaped as \\uXXXX, as Responsys requires (§2.5)."""
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _json_size(record: Any) -> int:
    if hasattr(record, "to_json"):
        record = record.to_json()
    return len(_dumps(record))


def batches(
    records: Iterable[Any],
    max_records: int = MAX_RECORDS_PER_CALL,
    max_bytes: int = MAX_BODY_BYTES - BATCH_BYTES_MARGIN,
) -> Iterator[list[Any]]:
    """Cut records into lists that fit one call: at most `max_records` rows and `max_bytes` of
    JSON rows. A single row bigger than `max_bytes` raises ValueError (it can never be sent)."""
    if max_records < 1 or max_bytes < 1:
        raise ValueError("max_records and max_bytes must be positive")
    batch: list[Any] = []
    size = 0
    for index, record in enumerate(records):
        record_size = _json_size(record) + 1  # the comma between rows
        if record_size > max_bytes:
            raise ValueError(
                f"record {index} is {record_size} bytes of JSON; the limit is {max_bytes}"
            )
        if batch and (len(batch) >= max_records or size + record_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record_size
    if batch:
        yield batch


def _failure_from_text(text: str) -> tuple[str, str] | None:
    """(error_code, message) if a cell is a MERGEFAILED:/DELETEFAILED: row, else None."""
    match = _ROW_FAILURE_RE.match(text)
    if not match:
        return None
    return match.group("code") or match.group("prefix"), text


def parse_record_rows(body: Any, expected: int) -> list[RowResult]:
    """Per-row results of merges and batch deletes (§2.1-2.4): `recordData.records`, one row per
    input row, failures prefixed MERGEFAILED:/DELETEFAILED:. A row count that differs from
    `expected` raises OutcomeUnknown, because the rows can no longer be matched to inputs."""
    if isinstance(body, dict) and isinstance(body.get("recordData"), dict):
        names = [str(n).upper() for n in body["recordData"].get("fieldNames") or []]
        rows = body["recordData"].get("records") or []
    elif isinstance(body, list):
        names, rows = ["RIID_"], body
    else:
        raise OutcomeUnknown(
            "Responsys answered without per-row results; the rows' outcome is unknown",
            records=expected,
        )
    if len(rows) != expected:
        raise OutcomeUnknown(
            f"Responsys returned {len(rows)} result rows for {expected} records",
            records=expected,
        )
    riid_at = names.index("RIID_") if "RIID_" in names else None
    results = []
    for index, row in enumerate(rows):
        if isinstance(row, dict) and "success" in row:
            results.append(_recipient_row(index, row))
            continue
        cells = row if isinstance(row, list) else [row]
        failure = next(
            (f for c in cells if isinstance(c, str) for f in [_failure_from_text(c)] if f), None
        )
        if failure:
            results.append(RowResult(index, False, None, failure[0], failure[1]))
            continue
        riid = None
        if riid_at is not None and riid_at < len(cells):
            try:
                riid = int(str(cells[riid_at]).strip())
            except ValueError:
                riid = None
        results.append(RowResult(index, True, riid, None, None))
    return results


def _recipient_row(index: int, row: dict[str, Any]) -> RowResult:
    raw_id = row.get("recipientId")
    try:
        riid = int(raw_id) if raw_id is not None else None
    except (TypeError, ValueError):
        riid = None
    message = row.get("errorMessage") or None
    ok = row.get("success") is True and riid != -1
    if ok:
        return RowResult(index, True, riid, None, None)
    code_match = _LEADING_CODE_RE.match(message or "")
    if code_match:
        code = code_match.group(1)
    else:
        code = "RECIPIENT_NOT_RESOLVED" if riid == -1 else "FAILED"
    return RowResult(index, False, None if riid == -1 else riid, code, message)


def parse_recipient_results(body: Any, expected: int) -> list[RowResult]:
    """Per-recipient results of triggers and custom events (§2.5, §2.6): an array of
    {recipientId, success, errorMessage}; recipientId -1 means it could not be resolved."""
    if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
        raise OutcomeUnknown(
            "Responsys answered without per-recipient results; the outcome is unknown",
            records=expected,
        )
    if len(body) != expected:
        raise OutcomeUnknown(
            f"Responsys returned {len(body)} results for {expected} recipients",
            records=expected,
        )
    return [_recipient_row(i, row) for i, row in enumerate(body)]


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


# --------------------------------------------------------------------------- stats


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


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class _Api:
    """One Responsys API: its ratelimit resource path, a conservative default limit, and
    whether a lost answer leaves the outcome unknown (writes)."""

    name: str
    verb: str
    resource_path: str
    default_limit: int
    write: bool


# Defaults when /rest/api/ratelimit is unavailable (§3): Segment's 400/min list merge and
# 500/min PET merge (halved, as Segment does), the sample 100/min retrieves, 10/min login,
# 1000/min polling; 10/min for object creation.
_APIS = {
    api.name: api
    for api in [
        _Api("login", "POST", "/auth/token", 10, False),
        _Api("get_rate_limits", "GET", "/ratelimit", 10, False),
        _Api("merge_list_members", "POST", "/lists/{listName}/members", 400, True),
        _Api("delete_list_members", "POST", "/lists/{listName}/members", 200, True),
        _Api("retrieve_list_member", "GET", "/lists/{listName}/members", 100, False),
        _Api("list_pets", "GET", "/lists/{listName}/listExtensions", 100, False),
        _Api("create_pet", "POST", "/lists/{listName}/listExtensions", 10, True),
        _Api(
            "merge_pet_members",
            "POST",
            "/lists/{listName}/listExtensions/{petName}/members",
            250,
            True,
        ),
        _Api(
            "delete_pet_members",
            "POST",
            "/lists/{listName}/listExtensions/{petName}/members",
            200,
            True,
        ),
        _Api(
            "retrieve_pet_member",
            "GET",
            "/lists/{listName}/listExtensions/{petName}/members",
            100,
            False,
        ),
        _Api("create_folder", "POST", "/folders", 10, True),
        _Api("create_supplemental_table", "POST", "/folders/{folderName}/suppData", 10, True),
        _Api(
            "merge_supplemental_rows",
            "POST",
            "/folders/{folderName}/suppData/{tableName}/members",
            200,
            True,
        ),
        _Api(
            "retrieve_supplemental_row",
            "GET",
            "/folders/{folderName}/suppData/{tableName}/members",
            100,
            False,
        ),
        _Api("merge_trigger_email", "POST", "/campaigns/{campaignName}/email", 200, True),
        _Api("trigger_email", "POST", "/campaigns/{campaignName}/email", 200, True),
        _Api("send_custom_event", "POST", "/events/{eventName}", 200, True),
        _Api("poll_async_request", "GET", "/requests/{requestId}", 1000, False),
    ]
}
# Query parameters: a mapping, or pairs when a name repeats (supplemental retrieve: qa=PK1&qa=PK2).
QueryParams = dict[str, str] | list[tuple[str, str]]
_PREFIX_RE = re.compile(r"^/rest/(?:api|asyncapi|haapi|haasyncapi)/v1\.3", re.IGNORECASE)


def _rate_key(verb: str, resource_path: str) -> str:
    path = _PREFIX_RE.sub("", resource_path.strip())
    path = re.sub(r"\{[^}]*\}", "{}", path).rstrip("/").lower()
    return f"{verb.upper()} {path}"


def _segment(name: str, *, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} is empty")
    return quote(name, safe="")


def _check_records(field_names: Sequence[str], records: Sequence[Sequence[str | None]]) -> None:
    """Every row must line up with field_names (Segment's misalignment defect, peers §1)."""
    if not field_names:
        raise ValueError("field_names is empty")
    if len(set(field_names)) != len(field_names):
        raise ValueError("field_names has duplicates")
    _check_count(len(records), "records")
    for index, row in enumerate(records):
        if isinstance(row, (str, bytes)) or len(row) != len(field_names):
            raise ValueError(
                f"record {index} has {len(row)} values for {len(field_names)} field names"
            )
        for value in row:
            if value is not None and not isinstance(value, str):
                raise ValueError(f"record {index}: values must be strings or None")


def _check_count(count: int, what: str) -> None:
    if count == 0:
        raise ValueError(f"no {what} to send")
    if count > MAX_RECORDS_PER_CALL:
        raise ValueError(
            f"{count} {what} in one call; Responsys accepts at most {MAX_RECORDS_PER_CALL} "
            "(use batches())"
        )


class ResponsysClient:
    """Responsys REST v1.3 over httpx with login, token refresh, pacing and bounded retries.

    Not shared between threads on purpose: calls are sequential, one client per account.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        username: str,
        password: str,
        timeout: float = 30.0,
        max_attempts: int = 5,
        max_retry_seconds: float = 300.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        logger: logging.Logger | None = None,
        refresh_after_seconds: float = 6000.0,
        rate_window_seconds: float = 60.0,
        rate_margin: float = 0.03,
        backoff_base_seconds: float = 1.0,
        throttle_backoff_seconds: float = 5.0,
        async_poll_seconds: float = 300.0,
        async_max_polls: int = 120,
    ) -> None:
        if not username or not password:
            raise InvalidCredentials("Responsys user name and password are required")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._login_endpoint = normalise_endpoint(endpoint)
        self._username = username
        self._password = password
        self._max_attempts = max_attempts
        self._max_retry_seconds = max_retry_seconds
        self._clock = clock
        self._sleep = sleep
        self._log = logger or logging.getLogger(__name__)
        self._refresh_after = refresh_after_seconds
        self._backoff_base = backoff_base_seconds
        self._throttle_backoff = throttle_backoff_seconds
        self._async_poll_seconds = async_poll_seconds
        self._async_max_polls = async_max_polls
        self._rng = random.Random()
        self._limiter = RateLimiter(
            window=rate_window_seconds, margin=rate_margin, clock=clock, sleep=sleep
        )
        for name in ("httpx", "httpcore"):
            if _EMAIL_LOG_FILTER not in logging.getLogger(name).filters:
                logging.getLogger(name).addFilter(_EMAIL_LOG_FILTER)
        self._http = httpx.Client(
            transport=transport, timeout=httpx.Timeout(timeout), follow_redirects=False
        )
        self._token: str | None = None
        self._old_tokens: deque[str] = deque(maxlen=4)
        self._token_time = 0.0
        self._api_base: str | None = None
        self._rate_limits: dict[str, int] | None = None
        self._limit_cuts: dict[str, int] = {}  # lowered after API_LIMIT_EXCEEDED despite pacing
        self.stats = ClientStats()

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> ResponsysClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return (
            f"ResponsysClient(endpoint={self._login_endpoint!r}, "
            f"api_endpoint={self._api_base!r}, logged_in={self._token is not None})"
        )

    @property
    def api_endpoint(self) -> str | None:
        """The base URL returned by login (None before the first call)."""
        return self._api_base

    def snapshot(self) -> dict[str, Any]:
        return self.stats.snapshot()

    # -- redaction -------------------------------------------------------------------

    def _redact(self, text: str | None) -> str | None:
        """Remove secrets and email addresses from text that came from the server."""
        if not text:
            return text
        for secret in [self._password, self._token, *self._old_tokens]:
            if secret:
                text = text.replace(secret, "[redacted]")
        return _EMAIL_RE.sub("[email]", text)

    def _failed(self, error: ResponsysError) -> ResponsysError:
        self.stats.errors[classify(error)] += 1
        return error

    # -- authentication --------------------------------------------------------------

    def login(self) -> None:
        """Password login (§1); the returned endPoint is validated before any token goes there."""
        response = self._send(
            _APIS["login"],
            f"{self._login_endpoint}{REST_PREFIX}/auth/token",
            data={"user_name": self._username, "password": self._password, "auth_type": "password"},
            authorized=False,
        )
        self._accept_token(response, _APIS["login"])
        self.stats.logins += 1
        self._log.info("responsys login ok; api host %s", urlsplit(self._api_base or "").hostname)

    def refresh_token(self) -> None:
        """Trade the current token for a new one (auth_type=token); log in again if refused."""
        if self._token is None or self._api_base is None:
            self.login()
            return
        try:
            response = self._send(
                _APIS["login"],
                f"{self._api_base}{REST_PREFIX}/auth/token",
                data={"auth_type": "token"},
            )
            self._accept_token(response, _APIS["login"])
            self.stats.refreshes += 1
            self._log.info("responsys token refreshed")
        except (InvalidCredentials, RequestRejected, ResponsysUnavailable, ResponsysTimeout) as exc:
            self._log.warning(
                "responsys token refresh failed (%s); logging in again", classify(exc)
            )
            self.login()

    def _accept_token(self, response: httpx.Response, api: _Api) -> None:
        if not response.is_success:
            error = self._error_from_response(response, api)
            if isinstance(error, (ResponsysThrottled, CapacityLimitExceeded)):
                raise self._failed(error)
            raise self._failed(
                InvalidCredentials(
                    f"Responsys login refused (HTTP {response.status_code}"
                    f"{' ' + error.error_code if error.error_code else ''}): {error.detail}",
                    http_status=response.status_code,
                    error_code=error.error_code,
                    detail=error.detail,
                    api=api.name,
                )
            )
        body = _json_or_none(response)
        token = body.get("authToken") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise self._failed(
                InvalidCredentials("Responsys login answered without an authToken", api=api.name)
            )
        endpoint = validate_api_endpoint(str(body.get("endPoint") or ""), self._login_endpoint)
        if self._token:
            self._old_tokens.append(self._token)
        self._token = token
        self._token_time = self._clock()
        self._api_base = endpoint

    def _ensure_token(self) -> None:
        if self._token is None:
            self.login()
        elif self._clock() - self._token_time >= self._refresh_after:
            self.refresh_token()

    # -- rate limits -----------------------------------------------------------------

    def rate_limits(self) -> dict[str, int]:
        """The account's per-API limits from GET /rest/api/ratelimit, keyed "VERB /path"; an
        empty dict (defaults apply) when the call fails."""
        if self._rate_limits is None:
            self._ensure_token()
            limits: dict[str, int] = {}
            try:
                response = self._send(
                    _APIS["get_rate_limits"], f"{self._api_base}/rest/api/ratelimit"
                )
                if not response.is_success:
                    raise self._error_from_response(response, _APIS["get_rate_limits"])
                limits = _parse_rate_limits(_json_or_none(response))
            except ResponsysError as exc:
                self._log.warning(
                    "responsys ratelimit unavailable (%s); using conservative defaults",
                    classify(exc),
                )
            self._rate_limits = limits
        return self._rate_limits

    def _limit_for(self, api: _Api) -> tuple[str, int]:
        limits = self._rate_limits or {}
        key = _rate_key(api.verb, api.resource_path)
        if key in limits:
            limit = limits[key]
        else:
            key, limit = f"default:{api.name}", api.default_limit
        return key, self._limit_cuts.get(key, limit)

    # -- transport -------------------------------------------------------------------

    def _send(
        self,
        api: _Api,
        url: str,
        *,
        params: QueryParams | None = None,
        content: bytes | None = None,
        data: dict[str, str] | None = None,
        authorized: bool = True,
        write: bool | None = None,
        records: int = 0,
    ) -> httpx.Response:
        """Send one request with pacing and bounded retries. Returns a success response or a
        non-retryable error response; raises when retries run out or the outcome is unknown."""
        write = api.write if write is None else write
        key, limit = self._limit_for(api)
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            headers = {"Accept": "application/json"}
            if content is not None:
                headers["Content-Type"] = "application/json"
            if authorized:
                headers["Authorization"] = self._token or ""
            self.stats.paced_seconds += self._limiter.acquire(key, limit)
            self.stats.calls[api.name] += 1
            try:
                response = self._http.request(
                    api.verb, url, params=params, content=content, data=data, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Never reached the server: safe to retry, writes included.
                error: ResponsysError = (
                    ResponsysTimeout
                    if isinstance(exc, httpx.TimeoutException)
                    else ResponsysUnavailable
                )(f"{api.name}: cannot connect to Responsys ({type(exc).__name__})", api=api.name)
            except httpx.TransportError as exc:
                if write:
                    raise self._failed(
                        OutcomeUnknown(
                            f"{api.name}: the request was sent but no answer came "
                            f"({type(exc).__name__}); {records} records may or may not have been "
                            "applied - reconcile before resending",
                            api=api.name,
                            records=records,
                        )
                    ) from None
                kind = (
                    ResponsysTimeout
                    if isinstance(exc, httpx.TimeoutException)
                    else ResponsysUnavailable
                )
                error = kind(
                    f"{api.name}: no answer from Responsys ({type(exc).__name__})", api=api.name
                )
            else:
                if response.is_success:
                    return response
                error = self._error_from_response(response, api)
                if isinstance(error, CapacityLimitExceeded):
                    raise self._failed(error)
                if isinstance(error, ResponsysThrottled):
                    self.stats.throttled += 1
                    # Someone else shares the account's budget: pace a little slower from now.
                    limit = max(1, int(limit * 0.9))
                    self._limit_cuts[key] = limit
                elif isinstance(error, ResponsysUnavailable):
                    if write and response.status_code == 504:
                        raise self._failed(
                            OutcomeUnknown(
                                f"{api.name}: gateway timeout after the request was sent; "
                                f"{records} records may or may not have been applied",
                                http_status=504,
                                api=api.name,
                                records=records,
                            )
                        )
                else:
                    return response  # a definite answer (4xx, token error): caller decides
            finally:
                self._limiter.release(key)
            if attempt >= self._max_attempts:
                raise self._failed(error)
            base = (
                self._throttle_backoff
                if isinstance(error, ResponsysThrottled)
                else self._backoff_base
            )
            delay = backoff_delay(attempt, base, 60.0, self._rng)
            if self._clock() - started + delay > self._max_retry_seconds:
                raise self._failed(error)
            self.stats.retries += 1
            self._log.warning(
                "responsys %s: %s, retry %d/%d in %.1fs",
                api.name,
                classify(error),
                attempt,
                self._max_attempts - 1,
                delay,
            )
            self._sleep(delay)

    def _error_from_response(self, response: httpx.Response, api: _Api) -> ResponsysError:
        body = _json_or_none(response)
        code = detail = None
        if isinstance(body, dict):
            code = body.get("errorCode")
            detail = body.get("detail") or body.get("title") or body.get("errorMessage")
        if detail is None:
            detail = response.text[:300] if response.text else response.reason_phrase
        return self._error_for_code(
            str(code) if code else None, self._redact(str(detail)), response.status_code, api
        )

    def _error_for_code(
        self, code: str | None, detail: str | None, status: int | None, api: _Api
    ) -> ResponsysError:
        label = f"HTTP {status}" if status else "async result"
        message = f"{api.name}: {label}{' ' + code if code else ''}: {detail}"
        kw = {"http_status": status, "error_code": code, "detail": detail, "api": api.name}
        if code == "API_LIMIT_EXCEEDED" or status == 429:
            return ResponsysThrottled(message, **kw)
        if code == "INTERNAL_CAPACITY_LIMIT_EXCEEDED":
            return CapacityLimitExceeded(message, **kw)
        if _is_token_error(code, detail):
            return InvalidCredentials(message, **kw)
        if code in _ACCESS_CODES:
            return AccessDenied(message, **kw)
        if code == "UNABLE_TO_SUBMIT_ASYNC_REQUEST" or (status is not None and status >= 500):
            return ResponsysUnavailable(message, **kw)
        if status is not None and 400 <= status < 500 or (status is None and code):
            return RequestRejected(message, **kw)
        return ResponsysError(message, **kw)

    def _call(
        self,
        api: _Api,
        path: str,
        *,
        params: QueryParams | None = None,
        body: Any = None,
        records: int = 0,
        async_mode: bool = False,
        expected_codes: frozenset[str] = frozenset(),
    ) -> Any:
        """A data call: size check, token, ratelimit table, then (async) submit and poll.

        Errors whose code is in `expected_codes` are raised without counting as errors: the
        caller treats them as answers (e.g. FOLDER_ALREADY_EXISTS)."""
        content = None
        if body is not None:
            content = _dumps(body)
            if len(content) > MAX_BODY_BYTES:
                raise ValueError(
                    f"{api.name}: request body is {len(content)} bytes; Responsys accepts at most "
                    f"{MAX_BODY_BYTES} (use batches())"
                )
        self._ensure_token()
        self.rate_limits()
        prefix = ASYNC_PREFIX if async_mode else REST_PREFIX
        payload = self._authorized(
            api,
            prefix + path,
            params=params,
            content=content,
            records=records,
            expected_codes=expected_codes,
        )
        if records:
            self.stats.records_sent[api.name] += records
        if async_mode:
            payload = self._await_async(api, payload, records)
        return payload

    def _await_async(self, api: _Api, accepted: Any, records: int) -> Any:
        """Poll an accepted async request (§2.8) in a bounded loop; return the wrapped response."""
        request_id = accepted.get("requestId") if isinstance(accepted, dict) else None
        if not request_id:
            raise self._failed(
                OutcomeUnknown(
                    f"{api.name}: async submit answered without a requestId",
                    api=api.name,
                    records=records,
                )
            )
        started = self._clock()
        delay = 0.1
        for _ in range(self._async_max_polls):
            self._sleep(delay)
            result = _pick_async_result(self._poll_once(request_id), request_id)
            status = str(result.get("status") or "").upper()
            response = result.get("response")
            if isinstance(response, str):
                try:
                    response = json.loads(response)
                except ValueError:
                    pass
            code = response.get("errorCode") if isinstance(response, dict) else None
            if status == "RESPONSE_PURGED" or code == "RESPONSE_PURGED":
                raise self._failed(
                    OutcomeUnknown(
                        f"{api.name}: async result {request_id} was purged before it was read",
                        api=api.name,
                        records=records,
                        request_id=request_id,
                    )
                )
            pending = (
                status in _ASYNC_PENDING
                or code == "PROCESSING_REQUEST"
                or (not status and response is None)
            )
            if not pending:
                if code:
                    detail = response.get("detail") or response.get("title")
                    raise self._failed(
                        self._error_for_code(code, self._redact(str(detail)), None, api)
                    )
                if status != "SUCCESS":
                    raise self._failed(
                        ResponsysError(
                            f"{api.name}: async request {request_id} ended with status {status}",
                            api=api.name,
                        )
                    )
                return response
            if self._clock() - started > self._async_poll_seconds:
                break
            delay = min(delay * 2, 5.0)
        raise self._failed(
            OutcomeUnknown(
                f"{api.name}: async request {request_id} not finished after "
                f"{self._clock() - started:.0f}s of polling; check it later by requestId",
                api=api.name,
                records=records,
                request_id=request_id,
            )
        )

    def _authorized(
        self,
        api: _Api,
        path: str,
        *,
        params: QueryParams | None = None,
        content: bytes | None = None,
        records: int = 0,
        expected_codes: frozenset[str] = frozenset(),
    ) -> Any:
        """Send with the token; a rejected token leads to one fresh login and one resend."""
        for relogin in (False, True):
            url = f"{self._api_base}{path}"
            response = self._send(api, url, params=params, content=content, records=records)
            if response.is_success:
                return _json_or_none(response)
            error = self._error_from_response(response, api)
            if isinstance(error, InvalidCredentials) and not relogin:
                self._log.info("responsys %s: token rejected; logging in again", api.name)
                self.login()
                continue
            if error.error_code in expected_codes:
                raise error
            raise self._failed(error)
        raise AssertionError("unreachable")  # pragma: no cover

    def _poll_once(self, request_id: str) -> Any:
        """GET /rest/asyncApi/v1.3/requests/{id} (one id gives one object)."""
        self._ensure_token()
        path = f"{ASYNC_PREFIX}/requests/{_segment(request_id, what='requestId')}"
        return self._authorized(_APIS["poll_async_request"], path)

    def _rows(
        self, api: _Api, body: Any, expected: int, *, recipients: bool = False
    ) -> list[RowResult]:
        try:
            rows = (
                parse_recipient_results(body, expected)
                if recipients
                else parse_record_rows(body, expected)
            )
        except OutcomeUnknown as exc:
            exc.api = api.name
            raise self._failed(exc) from None
        failed = sum(1 for r in rows if not r.ok)
        if failed:
            self.stats.records_failed[api.name] += failed
            self.stats.errors["rejected_record"] += failed
        self._log.info("responsys %s: %d rows, %d failed", api.name, len(rows), failed)
        return rows

    # -- profile lists ---------------------------------------------------------------

    def merge_list_members(
        self,
        list_name: str,
        field_names: Sequence[str],
        records: Sequence[Sequence[str | None]],
        merge_rule: MergeRule,
        *,
        async_mode: bool = False,
    ) -> list[RowResult]:
        """Merge up to 200 rows into a profile list (§2.1)."""
        _check_records(field_names, records)
        upper = [f.upper() for f in field_names]
        missing = [c for c in merge_rule.match_columns if c not in upper]
        if missing:
            raise ValueError(f"field_names lacks the match column(s) {missing}")
        api = _APIS["merge_list_members"]
        body = {
            "recordData": {
                "fieldNames": list(field_names),
                "records": [list(r) for r in records],
                "mapTemplateName": None,
            },
            "mergeRule": merge_rule.to_json(),
        }
        path = f"/lists/{_segment(list_name, what='list name')}/members"
        result = self._call(api, path, body=body, records=len(records), async_mode=async_mode)
        return self._rows(api, result, len(records))

    def delete_list_members(
        self,
        list_name: str,
        query_attribute: str,
        ids: Sequence[str],
        *,
        async_mode: bool = False,
    ) -> list[RowResult]:
        """Batch delete up to 200 members by r/e/c/m (§2.2)."""
        body = _delete_body(query_attribute, ids)
        api = _APIS["delete_list_members"]
        path = f"/lists/{_segment(list_name, what='list name')}/members"
        result = self._call(
            api,
            path,
            params={"action": "delete"},
            body=body,
            records=len(ids),
            async_mode=async_mode,
        )
        return self._rows(api, result, len(ids))

    def retrieve_list_member(
        self, list_name: str, query_attribute: str, id: str, field_names: Sequence[str]
    ) -> dict[str, Any] | None:
        """One member's fields (for reconciliation), or None when there is no such member.

        GET /lists/{list}/members?qa=r|e|c|m&id=…&fs=… answers `recordData.fieldNames` and
        `records` (one row per match; the first is returned). Source: Oracle, "Retrieve a member
        of a profile list based on query attribute",
        https://docs.oracle.com/en/cloud/saas/marketing/responsys-develop/API/REST/api-v1.3-lists-listName-members-get.htm
        """
        path = f"/lists/{_segment(list_name, what='list name')}/members"
        params = {"qa": _query_attribute(query_attribute), "id": str(id)}
        return self._retrieve(_APIS["retrieve_list_member"], path, params, field_names)

    def _retrieve(
        self, api: _Api, path: str, params: QueryParams, field_names: Sequence[str]
    ) -> dict[str, Any] | None:
        """One record as {field name: value}, or None on a documented not-found answer.

        Oracle documents no error code for "nothing matched"; a 404 is what public clients see
        (ethyca/fides treats 404 as "no member found"), so the codes in
        _MEMBER_NOT_FOUND_CODES mean None and any other error is raised.
        """
        query = [*(params.items() if isinstance(params, dict) else params)]
        query.append(("fs", _field_selection(field_names)))
        try:
            body = self._call(api, path, params=query, expected_codes=_MEMBER_NOT_FOUND_CODES)
        except RequestRejected as exc:
            if exc.error_code in _MEMBER_NOT_FOUND_CODES:
                return None
            raise
        data = body.get("recordData") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not data.get("records"):
            return None
        return dict(zip(data.get("fieldNames") or [], data["records"][0], strict=False))

    # -- profile extension tables ----------------------------------------------------

    def list_pets(self, list_name: str) -> list[PetInfo]:
        """The PETs of a profile list (§2.3)."""
        path = f"/lists/{_segment(list_name, what='list name')}/listExtensions"
        body = self._call(_APIS["list_pets"], path)
        pets = []
        for item in body if isinstance(body, list) else []:
            ext = item.get("profileExtension") or {}
            fields = [(f.get("fieldName"), f.get("fieldType")) for f in item.get("fields") or []]
            pets.append(PetInfo(ext.get("objectName"), ext.get("folderName"), fields))
        return pets

    def create_pet(
        self, list_name: str, pet_name: str, folder: str, fields: Sequence[tuple[str, str]]
    ) -> None:
        """Create a PET with typed fields (STR500, STR4000, INTEGER, NUMBER, TIMESTAMP)."""
        for name, kind in fields:
            if kind not in PET_FIELD_TYPES:
                raise ValueError(
                    f"PET field {name!r} type {kind!r} not in {sorted(PET_FIELD_TYPES)}"
                )
        body = {
            "profileExtension": {"objectName": pet_name, "folderName": folder},
            "fields": [{"fieldName": n, "fieldType": t} for n, t in fields],
        }
        path = f"/lists/{_segment(list_name, what='list name')}/listExtensions"
        self._call(_APIS["create_pet"], path, body=body)

    def merge_pet_members(
        self,
        list_name: str,
        pet_name: str,
        field_names: Sequence[str],
        records: Sequence[Sequence[str | None]],
        *,
        match_column_1: str = "RIID",
        match_column_2: str | None = None,
        insert_on_no_match: bool = True,
        update_on_match: str = "REPLACE_ALL",
        async_mode: bool = False,
    ) -> list[RowResult]:
        """Merge up to 200 rows into a PET (§2.3): flat body, match names without '_'."""
        _check_records(field_names, records)
        for column in [match_column_1] + ([match_column_2] if match_column_2 else []):
            if column not in _PET_MATCH_COLUMNS:
                raise ValueError(
                    f"PET match column {column!r} must be one of {sorted(_PET_MATCH_COLUMNS)} "
                    "(no trailing underscore)"
                )
        if not LIST_KEY_COLUMNS & {f.upper() for f in field_names}:
            raise ValueError(f"PET field_names need a list key: one of {sorted(LIST_KEY_COLUMNS)}")
        if match_column_1.endswith("HASH") and insert_on_no_match:
            raise ValueError("a hash match never inserts: set insert_on_no_match=False")
        if update_on_match not in ("REPLACE_ALL", "NO_UPDATE"):
            raise ValueError("update_on_match must be REPLACE_ALL or NO_UPDATE")
        api = _APIS["merge_pet_members"]
        body = {
            "recordData": {
                "fieldNames": list(field_names),
                "records": [list(r) for r in records],
                "mapTemplateName": None,
            },
            "insertOnNoMatch": insert_on_no_match,
            "updateOnMatch": update_on_match,
            "matchColumnName1": match_column_1,
            "matchColumnName2": match_column_2,
        }
        path = self._pet_path(list_name, pet_name)
        result = self._call(api, path, body=body, records=len(records), async_mode=async_mode)
        return self._rows(api, result, len(records))

    def delete_pet_members(
        self,
        list_name: str,
        pet_name: str,
        query_attribute: str,
        ids: Sequence[str],
        *,
        async_mode: bool = False,
    ) -> list[RowResult]:
        """Batch delete up to 200 PET rows by r/e/c/m (§2.3)."""
        body = _delete_body(query_attribute, ids)
        api = _APIS["delete_pet_members"]
        result = self._call(
            api,
            self._pet_path(list_name, pet_name),
            params={"action": "delete"},
            body=body,
            records=len(ids),
            async_mode=async_mode,
        )
        return self._rows(api, result, len(ids))

    def retrieve_pet_member(
        self,
        list_name: str,
        pet_name: str,
        query_attribute: str,
        id: str,
        field_names: Sequence[str],
    ) -> dict[str, Any] | None:
        """One PET row (for reconciliation), or None when the member has no row.

        GET /lists/{list}/listExtensions/{pet}/members?qa=r|e|c|m&id=…&fs=…; the id is matched
        in the parent profile list. Source: Oracle, "Retrieve Profile Extension Recipient using a
        query attribute",
        https://docs.oracle.com/en/cloud/saas/marketing/responsys-rest-api/op-rest-api-v1.3-lists-listname-listextensions-petname-members-get.html
        """
        params = {"qa": _query_attribute(query_attribute), "id": str(id)}
        return self._retrieve(
            _APIS["retrieve_pet_member"], self._pet_path(list_name, pet_name), params, field_names
        )

    @staticmethod
    def _pet_path(list_name: str, pet_name: str) -> str:
        return (
            f"/lists/{_segment(list_name, what='list name')}/listExtensions/"
            f"{_segment(pet_name, what='PET name')}/members"
        )

    # -- folders and supplemental tables -----------------------------------------------

    def create_folder(self, name: str) -> bool:
        """Create a folder; True if created, False if it already existed (§2.7)."""
        api = _APIS["create_folder"]
        exists = frozenset({"FOLDER_ALREADY_EXISTS"})
        try:
            body = self._call(api, "/folders", body={"folderName": name}, expected_codes=exists)
        except RequestRejected as exc:
            if exc.error_code in exists:
                return False
            raise
        if isinstance(body, dict) and body.get("success") is False:
            message = str(body.get("errorMessage") or "")
            if "FOLDER_ALREADY_EXISTS" in message or "already exists" in message.lower():
                return False
            raise self._failed(
                RequestRejected(f"create_folder: {self._redact(message)}", api=api.name)
            )
        return True

    def create_supplemental_table(
        self,
        folder: str,
        table: str,
        fields: Sequence[tuple[str, str]],
        primary_keys: Sequence[str],
    ) -> None:
        """Create a supplemental table (§2.4); a primary key is mandatory."""
        names = [n for n, _ in fields]
        if not primary_keys or not set(primary_keys) <= set(names):
            raise ValueError("primary_keys must be a non-empty subset of the field names")
        body = {
            "table": {"objectName": table},
            "fields": [
                {"fieldName": n, "fieldType": t, "dataExtractionKey": False} for n, t in fields
            ],
            "primaryKeys": list(primary_keys),
        }
        path = f"/folders/{_segment(folder, what='folder name')}/suppData"
        self._call(_APIS["create_supplemental_table"], path, body=body)

    def merge_supplemental_rows(
        self,
        folder: str,
        table: str,
        field_names: Sequence[str],
        records: Sequence[Sequence[str | None]],
        insert_on_no_match: bool = True,
        update_on_match: str = "REPLACE_ALL",
        *,
        async_mode: bool = False,
    ) -> list[RowResult]:
        """Merge up to 200 rows into a supplemental table (§2.4); field names are case-sensitive."""
        _check_records(field_names, records)
        if update_on_match not in ("REPLACE_ALL", "NO_UPDATE"):
            raise ValueError("update_on_match must be REPLACE_ALL or NO_UPDATE")
        api = _APIS["merge_supplemental_rows"]
        body = {
            "recordData": {
                "fieldNames": list(field_names),
                "records": [list(r) for r in records],
                "mapTemplateName": None,
            },
            "insertOnNoMatch": insert_on_no_match,
            "updateOnMatch": update_on_match,
        }
        path = (
            f"/folders/{_segment(folder, what='folder name')}/suppData/"
            f"{_segment(table, what='table name')}/members"
        )
        result = self._call(api, path, body=body, records=len(records), async_mode=async_mode)
        return self._rows(api, result, len(records))

    def retrieve_supplemental_row(
        self,
        folder: str,
        table: str,
        primary_key: Sequence[tuple[str, str]],
        field_names: Sequence[str],
    ) -> dict[str, Any] | None:
        """One supplemental-table row by its whole primary key, or None when there is none.

        GET /folders/{folder}/suppData/{table}/members?qa=PK1&qa=PK2&id=v1&id=v2&fs=…: every
        primary-key column once as `qa`, its value as `id` in the same order; names are
        case-sensitive. Source: Oracle, "Retrieve Supplemental Table member based on a query
        attribute",
        https://docs.oracle.com/en/cloud/saas/marketing/responsys-develop/API/REST/api-v1.3-folders-folderName-suppData-tableName-members-get.htm
        """
        if not primary_key:
            raise ValueError("primary_key needs every primary-key column and its value")
        params = [("qa", column) for column, _ in primary_key]
        params += [("id", str(value)) for _, value in primary_key]
        path = (
            f"/folders/{_segment(folder, what='folder name')}/suppData/"
            f"{_segment(table, what='table name')}/members"
        )
        return self._retrieve(_APIS["retrieve_supplemental_row"], path, params, field_names)

    # -- email triggers and custom events ----------------------------------------------

    def merge_trigger_email(
        self,
        campaign: str,
        list_name: str,
        folder: str,
        field_names: Sequence[str],
        records: Sequence[Sequence[str | None]],
        optional_data: Sequence[Sequence[tuple[str, str]]],
        merge_rule: MergeRule,
        *,
        async_mode: bool = False,
    ) -> list[RowResult]:
        """Merge rows into the campaign's profile list and send the email (§2.5).

        The documented body names no list: Responsys uses the campaign's list. `list_name` and
        `folder` only label logs and errors so a mismatch is visible to the operator.
        """
        _check_records(field_names, records)
        if len(optional_data) != len(records):
            raise ValueError("optional_data needs one entry (possibly empty) per record")
        api = _APIS["merge_trigger_email"]
        body = {
            "mergeTriggerRecordData": {
                "fieldNames": list(field_names),
                "mergeTriggerRecords": [
                    {"fieldValues": list(r), "optionalData": _optional_data_json(o)}
                    for r, o in zip(records, optional_data, strict=True)
                ],
            },
            "mergeRule": merge_rule.to_json(),
        }
        path = f"/campaigns/{_segment(campaign, what='campaign name')}/email"
        self._log.info(
            "responsys merge_trigger_email: campaign %s, list %s/%s, %d records",
            campaign,
            folder,
            list_name,
            len(records),
        )
        result = self._call(api, path, body=body, records=len(records), async_mode=async_mode)
        return self._rows(api, result, len(records), recipients=True)

    def trigger_email(
        self, campaign: str, recipients: Sequence[Recipient], *, async_mode: bool = False
    ) -> list[RowResult]:
        """Send a campaign to existing list members (§2.5)."""
        _check_count(len(recipients), "recipients")
        api = _APIS["trigger_email"]
        body = {"recipientData": [r.to_json() for r in recipients]}
        path = f"/campaigns/{_segment(campaign, what='campaign name')}/email"
        result = self._call(api, path, body=body, records=len(recipients), async_mode=async_mode)
        return self._rows(api, result, len(recipients), recipients=True)

    def send_custom_event(
        self, event_name: str, recipients: Sequence[Recipient], *, async_mode: bool = False
    ) -> list[RowResult]:
        """Raise a custom event for up to 200 recipients (§2.6)."""
        _check_count(len(recipients), "recipients")
        api = _APIS["send_custom_event"]
        body = {
            "customEvent": {
                "eventStringDataMapping": None,
                "eventNumberDataMapping": None,
                "eventDateDataMapping": None,
            },
            "recipientData": [r.to_json() for r in recipients],
        }
        path = f"/events/{_segment(event_name, what='event name')}"
        result = self._call(api, path, body=body, records=len(recipients), async_mode=async_mode)
        return self._rows(api, result, len(recipients), recipients=True)


# --------------------------------------------------------------------------- small helpers


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _is_token_error(code: str | None, detail: str | None) -> bool:
    """§3: a bad or expired token surfaces as UNEXPECTED_EXCEPTION 'Not a valid authentication
    token' (no dedicated code is documented)."""
    return code == "UNEXPECTED_EXCEPTION" and "authentication token" in (detail or "").lower()


def _query_attribute(value: str) -> str:
    if value not in QUERY_ATTRIBUTES:
        raise ValueError(f"query_attribute must be one of {sorted(QUERY_ATTRIBUTES)}")
    return value


def _field_selection(field_names: Sequence[str]) -> str:
    """The `fs` parameter: the names comma-separated, or `all` when there are none or they pass
    the documented 150-character limit of `fs` (the caller then picks its fields out)."""
    joined = ",".join(field_names)
    return joined if joined and len(joined) <= MAX_FIELD_SELECTION_CHARS else "all"


def _delete_body(query_attribute: str, ids: Sequence[str]) -> dict[str, Any]:
    if query_attribute not in QUERY_ATTRIBUTES:
        raise ValueError(f"query_attribute must be one of {sorted(QUERY_ATTRIBUTES)}")
    _check_count(len(ids), "ids")
    for value in ids:
        if not isinstance(value, str) or not value or len(value) > 500:
            raise ValueError("each id must be a non-empty string of at most 500 characters")
    return {"queryAttribute": query_attribute, "ids": list(ids)}


def _parse_rate_limits(body: Any) -> dict[str, int]:
    """`[{limit, api, resource_path, verb}]` -> {"VERB /path": limit}; the lowest wins."""
    limits: dict[str, int] = {}
    for entry in body if isinstance(body, list) else []:
        if not isinstance(entry, dict):
            continue
        try:
            limit = int(entry.get("limit"))
        except (TypeError, ValueError):
            continue
        path, verb = entry.get("resource_path"), entry.get("verb")
        if limit < 1 or not isinstance(path, str) or not isinstance(verb, str):
            continue
        key = _rate_key(verb, path)
        limits[key] = min(limit, limits.get(key, limit))
    return limits


def _pick_async_result(body: Any, request_id: str) -> dict[str, Any]:
    """The poll answer for one request: an object, or an array that contains it."""
    if isinstance(body, list):
        for item in body:
            if isinstance(item, dict) and item.get("requestId") == request_id:
                return item
        return body[0] if body and isinstance(body[0], dict) else {}
    return body if isinstance(body, dict) else {}
