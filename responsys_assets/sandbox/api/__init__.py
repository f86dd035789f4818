"""A strict emulator of the Oracle Responsys REST API v1.3 (the calls our exporters make).

It stands in for Responsys on laptops (`responsys-assets sandbox`), in tests and in benchmarks. It
follows /work/shared/reference/responsys-api.md to the letter and refuses what the real API would
refuse, so that a client which works here does not depend on emulator-only leniency. Where the
reference is silent, the choice made is stated in the docstring of the handler concerned:

- Login with wrong credentials: 401 INVALID_USER_NAME_PASSWORD.
- Recipient/member not found on retrieve or delete-by-query: 404 RECIPIENT_NOT_FOUND; no
  supplemental row for a primary key on retrieve: 404 RECORD_NOT_FOUND (Oracle's retrieve pages
  show no failure code; public clients see a 404).
- More than 200 records (sync or async): 400 RECIPIENT_LIMIT_EXCEEDED.
- Unknown objects: 404 LIST_NOT_FOUND / TABLE_NOT_FOUND (PETs and supplemental tables) /
  FOLDER_NOT_FOUND / CAMPAIGN_NOT_FOUND / EVENT_NOT_FOUND; unknown path: 404 RESOURCE_NOT_FOUND.
- INTERNAL_CAPACITY_LIMIT_EXCEEDED is answered with HTTP 401, like API_LIMIT_EXCEEDED.
- MERGEFAILED / DELETEFAILED rows number records from 0 (their position in the request).
- Merge-trigger merges into the campaign's profile list (Store.ensure_campaign(name, list_name));
  a campaign without a list uses the account's only list, else the call is refused.
- Async requests are applied when submitted; their result is revealed by the polling API only
  after `EmulatorSettings.async_processing_seconds`. A finished error result has status FAILURE.
- drop_after_send and over-size bodies close the TCP connection without any response (the
  uvicorn transport is closed); if the transport cannot be reached the emulator instead holds the
  request open for an hour, beyond any sane client timeout.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from responsys_assets.sandbox.store import MEMBER_COLUMNS, Store

MAX_RECORDS = 200
MAX_DELETE_ID_LENGTH = 500
MAX_QUERY_DELETES = 10
MAX_FIELD_SELECTION_CHARS = 150  # `fs` of every retrieve call
MAX_SUPP_TABLES = 250
DEFAULT_RATE_LIMIT = 1000
INJECTED_FAILURE_CODE = "INJECTED_FAILURE"
DROP_FALLBACK_SLEEP_SECONDS = 3600.0
ASYNC_RETENTION_SECONDS = 24 * 3600

# --- Responsys vocabulary (reference §2 and §4) ---------------------------------------------
SYSTEM_COLUMNS = frozenset(
    {
        "RIID_",
        "CREATED_SOURCE_IP_",
        "CUSTOMER_ID_",
        "EMAIL_ADDRESS_",
        "EMAIL_DOMAIN_",
        "EMAIL_ISP_",
        "EMAIL_FORMAT_",
        "EMAIL_PERMISSION_STATUS_",
        "EMAIL_DELIVERABILITY_STATUS_",
        "EMAIL_PERMISSION_REASON_",
        "EMAIL_MD5_HASH_",
        "EMAIL_SHA256_HASH_",
        "MOBILE_NUMBER_",
        "MOBILE_COUNTRY_",
        "MOBILE_PERMISSION_STATUS_",
        "MOBILE_DELIVERABILITY_STATUS_",
        "MOBILE_PERMISSION_REASON_",
        "POSTAL_STREET_1_",
        "POSTAL_STREET_2_",
        "CITY_",
        "STATE_",
        "POSTAL_CODE_",
        "CREATED_DATE_",
        "MODIFIED_DATE_",
    }
)
LIST_MATCH_COLUMNS = frozenset(
    {
        "RIID_",
        "CUSTOMER_ID_",
        "EMAIL_ADDRESS_",
        "MOBILE_NUMBER_",
        "EMAIL_MD5_HASH_",
        "EMAIL_SHA256_HASH_",
    }
)
HASH_COLUMNS = frozenset({"EMAIL_MD5_HASH_", "EMAIL_SHA256_HASH_"})
# PET merge match names take no trailing underscore; value = the list column they match.
PET_MATCH_COLUMNS = {name.rstrip("_"): name for name in LIST_MATCH_COLUMNS}
PET_LIST_KEYS = frozenset({"RIID_", "EMAIL_ADDRESS_", "CUSTOMER_ID_"})
QUERY_ATTRIBUTES = {"r": "RIID_", "e": "EMAIL_ADDRESS_", "c": "CUSTOMER_ID_", "m": "MOBILE_NUMBER_"}
PET_FIELD_TYPES = frozenset({"STR500", "STR4000", "INTEGER", "NUMBER", "TIMESTAMP"})
SUPP_FIELD_TYPES = frozenset(
    {"STR25", "STR50", "STR100", "STR255", "STR500", "STR4000", "CHAR", "INTEGER", "NUMBER"}
    | {"TIMESTAMP"}
)
_MERGE_RULE_KEYS = frozenset(
    {
        "insertOnNoMatch",
        "updateOnMatch",
        "matchColumnName1",
        "matchColumnName2",
        "matchColumnName3",
        "matchOperator",
        "optinValue",
        "optoutValue",
        "htmlValue",
        "textValue",
        "defaultPermissionStatus",
        "rejectRecordIfChannelEmpty",
    }
)
_RECIPIENT_KEYS = {
    "recipientId": "RIID_",
    "customerId": "CUSTOMER_ID_",
    "emailAddress": "EMAIL_ADDRESS_",
    "mobileNumber": "MOBILE_NUMBER_",
    "emailMD5Hash": "EMAIL_MD5_HASH_",
    "emailSHA256Hash": "EMAIL_SHA256_HASH_",
}
_FIELD_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9$#_]*")
_OBJECT_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")
_FOLDER_NAME_RE = re.compile(r"[A-Za-z0-9 !\-=@_\[\]{}]{1,100}")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_RESERVED_LETTERS = frozenset("AEGKMPTU")
_ORACLE_RESERVED_WORDS = frozenset(
    """ACCESS ADD ALL ALTER AND ANY AS ASC AUDIT BETWEEN BY CHAR CHECK CLUSTER COLUMN COMMENT
    COMPRESS CONNECT CREATE CURRENT DATE DECIMAL DEFAULT DELETE DESC DISTINCT DROP ELSE EXCLUSIVE
    EXISTS FILE FLOAT FOR FROM GRANT GROUP HAVING ID IDENTIFIED IMMEDIATE IN INCREMENT INDEX
    INITIAL INSERT INTEGER INTERSECT INTO IS LEVEL LIKE LOCK LONG MAXEXTENTS MINUS MLSLABEL MODE
    MODIFY NOAUDIT NOCOMPRESS NOT NOWAIT NULL NUMBER OF OFFLINE ON ONLINE OPTION OR ORDER PCTFREE
    PRIOR PRIVILEGES PUBLIC RAW RENAME RESOURCE REVOKE ROW ROWID ROWNUM ROWS SELECT SESSION SET
    SHARE SIZE SMALLINT START SUCCESSFUL SYNONYM SYSDATE TABLE THEN TO TRIGGER UID UNION UNIQUE
    UPDATE USER VALIDATE VALUES VARCHAR VARCHAR2 VIEW WHENEVER WHERE WITH""".split()
)


def field_name_problem(name: str) -> str | None:
    """Why `name` is not a valid custom field name (reference §4), or None when it is."""
    if not isinstance(name, str) or not name:
        return "a field name must be a non-empty string"
    if len(name) > 30:
        return f"field name {name!r} is longer than 30 characters"
    if not _FIELD_NAME_RE.fullmatch(name):
        return f"field name {name!r} must start with a letter and use only A-Z a-z 0-9 $ # _"
    if name.endswith("_"):
        return f"custom field name {name!r} must not end with '_'"
    if name.upper() in _RESERVED_LETTERS:
        return f"field name {name!r} is a reserved single letter"
    if name.upper() in _ORACLE_RESERVED_WORDS:
        return f"field name {name!r} is an Oracle reserved word"
    return None


# --- errors ----------------------------------------------------------------------------------
_TITLES = {
    "INVALID_PARAMETER": "Invalid request parameters",
    "INVALID_REQUEST_CONTENT": "Invalid request content",
    "RECIPIENT_LIMIT_EXCEEDED": "Recipient limit exceeded",
    "API_LIMIT_EXCEEDED": "API limit exceeded",
    "INTERNAL_CAPACITY_LIMIT_EXCEEDED": "Internal capacity limit exceeded",
    "UNEXPECTED_EXCEPTION": "Unexpected exception",
    "INVALID_USER_NAME_PASSWORD": "Invalid user name or password",
    "LIST_NOT_FOUND": "List not found",
    "TABLE_NOT_FOUND": "Table not found",
    "FOLDER_NOT_FOUND": "Folder not found",
    "CAMPAIGN_NOT_FOUND": "Campaign not found",
    "EVENT_NOT_FOUND": "Event not found",
    "RECIPIENT_NOT_FOUND": "Recipient not found",
    "RESOURCE_NOT_FOUND": "Resource not found",
    "FOLDER_ALREADY_EXISTS": "Folder already exists",
    "TABLE_ALREADY_EXISTS": "Table already exists",
    "PROFILE_EXTENSION_ALREADY_EXISTS": "Profile extension already exists",
    "SUPP_TABLE_LIMIT_EXCEEDED": "Supplemental table limit exceeded",
}


class ApiError(Exception):
    """A Responsys error answer: HTTP status plus the documented error body."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.detail)


def error_body(code: str, detail: str) -> dict[str, Any]:
    return {
        "type": "",
        "title": _TITLES.get(code, code.replace("_", " ").capitalize()),
        "errorCode": code,
        "detail": detail,
        "errorDetails": [],
    }


def _invalid(detail: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER", detail)


def _bad_content(detail: str) -> ApiError:
    return ApiError(400, "INVALID_REQUEST_CONTENT", detail)


def _bad_token() -> ApiError:
    return ApiError(500, "UNEXPECTED_EXCEPTION", "Not a valid authentication token")


def _row_failure(prefix: str, index: int, code: str, message: str) -> str:
    return f"{prefix}: Record {index} = {code}: {message}"


# --- settings and faults ----------------------------------------------------------------------
def default_rate_limits() -> dict[str, int]:
    """Per-minute limits by API name, shaped like a test account's `GET /rest/api/ratelimit`."""
    return {
        "login": 10,
        "rateLimit": 100,
        "mergeListMembers": 1000,
        "retrieveListMembers": 100,
        "deleteListMembers": 1000,
        "getProfileExtensions": 100,
        "createPet": 10,
        "mergePetMembers": 1000,
        "retrievePetMembers": 100,
        "deletePetMembers": 1000,
        "createFolder": 10,
        "createSuppTable": 10,
        "mergeSuppData": 1000,
        "retrieveSuppData": 100,
        "deleteSuppData": 1000,
        "dropSuppTable": 10,
        "listSuppTables": 100,
        "triggerEmail": 1000,
        "mergeTriggerEmail": 1000,
        "customEvent": 1000,
        "getAsyncResponse": 1000,
    }


@dataclass
class EmulatorSettings:
    """Account credentials and the limits the emulated account enforces."""

    username: str
    password: str = field(repr=False)
    token_lifetime_seconds: int = 7200
    rate_limits: dict[str, int] = field(default_factory=default_rate_limits)
    max_body_bytes: int = 10 * 1024 * 1024
    async_processing_seconds: float = 0.5
    # Responsys counts calls per minute; tests shorten the window to check pacing in seconds.
    rate_window_seconds: float = 60.0


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


class _Tokens:
    """Issued auth tokens (in memory: a restart logs everybody out, as a new pod would)."""

    def __init__(self, lifetime_seconds: int) -> None:
        self._lifetime = lifetime_seconds
        self._tokens: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def issue(self, generation: int) -> str:
        token = secrets.token_urlsafe(48)
        with self._lock:
            now = time.monotonic()
            self._tokens = {t: v for t, v in self._tokens.items() if v[0] > now}
            self._tokens[token] = (now + self._lifetime, generation)
        return token

    def valid(self, token: str | None, generation: int) -> bool:
        if not token:
            return False
        with self._lock:
            entry = self._tokens.get(token)
        return entry is not None and entry[0] > time.monotonic() and entry[1] == generation


# --- request parsing helpers -----------------------------------------------------------------
def _obj(value: Any, what: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
    """A JSON object with only known keys (a typo is an error, not silently ignored)."""
    if not isinstance(value, dict):
        raise _bad_content(f"{what} must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _bad_content(f"Unknown property {unknown[0]!r} in {what}")
    for key in sorted(required):
        if value.get(key) is None:
            raise _invalid(f"{key} is null or missing in {what}")
    return value


def _bool(value: Any, name: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _invalid(f"{name} must be true or false")
    return value


def _update_on_match(value: Any) -> str:
    if value is None:
        return "REPLACE_ALL"
    if value not in ("REPLACE_ALL", "NO_UPDATE"):
        raise _invalid(f"updateOnMatch must be REPLACE_ALL or NO_UPDATE, got {value!r}")
    return value


def _check_count(count: int, what: str) -> None:
    if count > MAX_RECORDS:
        raise ApiError(
            400, "RECIPIENT_LIMIT_EXCEEDED", f"{count} {what} sent; at most {MAX_RECORDS} allowed"
        )


def _field_names(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _invalid("FieldList is null OR empty")
    if not all(isinstance(n, str) and n for n in value):
        raise _bad_content("fieldNames must be non-empty strings")
    return value


def _row_values(row: Any, width: int, what: str) -> list[str | None]:
    if not isinstance(row, list) or len(row) != width:
        raise _bad_content(f"each {what} must be an array of {width} values (one per field name)")
    if not all(v is None or isinstance(v, str) for v in row):
        raise _bad_content(f"{what} values must be strings or null")
    return row


def _record_data(value: Any) -> tuple[list[str], list[list[str | None]]]:
    rd = _obj(value, "recordData", {"fieldNames", "records", "mapTemplateName"})
    names = _field_names(rd.get("fieldNames"))
    records = rd.get("records")
    if not isinstance(records, list) or not records:
        raise _invalid("records is null or empty")
    _check_count(len(records), "records")
    if rd.get("mapTemplateName") is not None and not isinstance(rd["mapTemplateName"], str):
        raise _bad_content("mapTemplateName must be a string or null")
    return names, [_row_values(r, len(names), "record") for r in records]


def _optional_data(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad_content("optionalData must be an array")
    out = []
    for item in value:
        item = _obj(item, "optionalData", {"name", "value"}, {"name"})
        name = item["name"]
        if not isinstance(name, str) or not name:
            raise _bad_content("optionalData name must be a non-empty string")
        if name.upper() in SYSTEM_COLUMNS or name.endswith("_"):
            raise _invalid(f"optionalData must not use the system column name {name!r}")
        if item.get("value") is not None and not isinstance(item["value"], str):
            raise _bad_content("optionalData value must be a string or null")
        out.append({"name": name, "value": item.get("value")})
    return out


def _blank(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _match_value(column: str, value: str | None) -> str | None:
    """An identifier as stored and matched: trimmed, hashes in lower-case hex."""
    value = _blank(value)
    return value.lower() if value is not None and column in HASH_COLUMNS else value


def _typed_value_problem(field_type: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if field_type.startswith("STR"):
        size = int(field_type[3:])
        return f"longer than {size} characters" if len(value) > size else None
    if field_type == "CHAR":
        return "longer than 1 character" if len(value) > 1 else None
    if field_type == "INTEGER":
        return None if re.fullmatch(r"-?\d+", value.strip()) else "not an integer"
    if field_type == "NUMBER":
        try:
            float(value)
        except ValueError:
            return "not a number"
        return None
    if field_type == "TIMESTAMP":
        try:
            datetime.fromisoformat(value.strip())
        except ValueError:
            return "not a timestamp (ISO-8601 expected)"
    return None


@dataclass(frozen=True)
class MergeRule:
    """A validated list-merge rule (§2.1) with defaults filled in."""

    insert_on_no_match: bool
    update_on_match: str
    match1: str
    match2: str | None
    operator: str
    optin: str
    optout: str
    html: str
    text: str
    default_status: str
    reject_channels: frozenset[str]

    def echo(self) -> dict[str, Any]:
        return {
            "insertOnNoMatch": self.insert_on_no_match,
            "updateOnMatch": self.update_on_match,
            "matchColumnName1": self.match1,
            "matchColumnName2": self.match2,
            "matchColumnName3": None,
            "matchOperator": self.operator,
            "optinValue": self.optin,
            "optoutValue": self.optout,
            "htmlValue": self.html,
            "textValue": self.text,
            "defaultPermissionStatus": "OPTIN" if self.default_status == "I" else "OPTOUT",
            "rejectRecordIfChannelEmpty": ",".join(sorted(self.reject_channels)) or None,
        }


def parse_merge_rule(value: Any) -> MergeRule:
    """Validate a mergeRule exactly as §2.1 describes; raises ApiError INVALID_PARAMETER."""
    if value is None:
        raise _invalid("mergeRule is null or missing")
    rule = _obj(value, "mergeRule", set(_MERGE_RULE_KEYS))

    def text(key: str, default: str) -> str:
        v = rule.get(key)
        if v is None:
            return default
        if not isinstance(v, str):
            raise _invalid(f"{key} must be a string")
        return v

    match1 = rule.get("matchColumnName1")
    if match1 not in LIST_MATCH_COLUMNS:
        raise _invalid(f"matchColumnName1 must be one of {sorted(LIST_MATCH_COLUMNS)}")
    match2 = rule.get("matchColumnName2") or None
    if match2 is not None and (match2 not in LIST_MATCH_COLUMNS or match2 == match1):
        raise _invalid(f"matchColumnName2 must be null or another of {sorted(LIST_MATCH_COLUMNS)}")
    if rule.get("matchColumnName3") not in (None, ""):
        raise _invalid("matchColumnName3 must be null")
    operator = text("matchOperator", "NONE")
    if operator not in ("NONE", "AND"):
        raise _invalid("matchOperator must be NONE or AND")
    if operator == "AND" and match2 is None:
        raise _invalid("matchOperator AND needs matchColumnName2")
    insert = _bool(rule.get("insertOnNoMatch"), "insertOnNoMatch", True)
    keys = {match1, match2} - {None}
    hashes = keys & HASH_COLUMNS
    if len(hashes) > 1 or (hashes and "EMAIL_ADDRESS_" in keys):
        raise _invalid("hash match columns cannot be combined with each other or EMAIL_ADDRESS_")
    if hashes and insert:
        raise _invalid("insertOnNoMatch must be false when matching on an email hash")
    status = text("defaultPermissionStatus", "OPTOUT")
    if status not in ("OPTIN", "OPTOUT"):
        raise _invalid("defaultPermissionStatus must be OPTIN or OPTOUT")
    channels_raw = text("rejectRecordIfChannelEmpty", "")
    channels = frozenset(c.strip() for c in channels_raw.split(",") if c.strip())
    if not channels <= {"E", "M", "P"}:
        raise _invalid("rejectRecordIfChannelEmpty must be a comma list of E, M, P")
    return MergeRule(
        insert_on_no_match=insert,
        update_on_match=_update_on_match(rule.get("updateOnMatch")),
        match1=match1,
        match2=match2,
        operator=operator,
        optin=text("optinValue", "I"),
        optout=text("optoutValue", "O"),
        html=text("htmlValue", "H"),
        text=text("textValue", "T"),
        default_status="I" if status == "OPTIN" else "O",
        reject_channels=channels,
    )


class _MemberIndex:
    """Members of one list by each identifier, kept current while a batch is merged."""

    _COLUMNS = ("riid", "customer_id", "email_address", "mobile_number")
    _COLUMNS += ("email_md5_hash", "email_sha256_hash")

    def __init__(self) -> None:
        self._by: dict[str, dict[str, list[dict]]] = {c: {} for c in self._COLUMNS}

    def add(self, member: dict) -> None:
        for col in self._COLUMNS:
            if member.get(col) is not None:
                bucket = self._by[col].setdefault(str(member[col]), [])
                if not any(m is member for m in bucket):
                    bucket.append(member)

    def remove(self, member: dict) -> None:
        for col in self._COLUMNS:
            bucket = self._by[col].get(str(member.get(col)), [])
            bucket[:] = [m for m in bucket if m is not member]

    def find(self, api_column: str, value: str) -> list[dict]:
        return self._by[MEMBER_COLUMNS[api_column]].get(value, [])


def _email_hashes(email: str | None) -> tuple[str | None, str | None]:
    if email is None:
        return None, None
    norm = email.strip().lower().encode()
    return hashlib.md5(norm).hexdigest(), hashlib.sha256(norm).hexdigest()


# --- the call context --------------------------------------------------------------------------
@dataclass
class _Call:
    api: str
    params: dict[str, str]
    query: QueryParams
    headers: Headers
    body: bytes
    base_url: str
    fail_indexes: frozenset[int] = frozenset()
    records: int = 0

    def json(self) -> Any:
        ctype = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise _bad_content("Content-Type must be application/json")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad_content(f"Request body is not valid JSON: {exc}") from None

    def one(self, name: str) -> str:
        values = self.query.getlist(name)
        if len(values) != 1 or not values[0]:
            raise _invalid(f"query parameter {name} is required once")
        return values[0]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    api: str | Callable[[bytes], str]
    handler: Callable[[_Call], Any]
    action: str | None = None
    writes: bool = False
    asyncable: bool = False
    async_only: bool = False
    auth: bool = True
    resource_path: str = ""


_PREFIX = re.compile(r"/rest/(api|asyncApi)/v1\.3(/.*)")


def _async_api_name(api: str) -> str:
    return "async" + api[0].upper() + api[1:]


# --- the emulator ------------------------------------------------------------------------------
class _Emulator:
    """Request handling: every handler validates, applies to the Store and builds the answer."""

    def __init__(self, store: Store, settings: EmulatorSettings, faults: FaultInjector) -> None:
        self.store = store
        self.settings = settings
        self.faults = faults
        self.tokens = _Tokens(settings.token_lifetime_seconds)
        self.limiter = _RateLimiter(settings.rate_limits, settings.rate_window_seconds)
        self.routes = self._routes()

    def _routes(self) -> list[_Route]:
        def r(method: str, path: str, api: Any, handler: Any, **kw: Any) -> _Route:
            regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
            return _Route(method, re.compile(regex), api, handler, resource_path=path, **kw)

        def email_api(body: bytes) -> str:
            return "mergeTriggerEmail" if b"mergeTriggerRecordData" in body else "triggerEmail"

        members = "/lists/{list}/members"
        pet_members = "/lists/{list}/listExtensions/{pet}/members"
        supp_members = "/folders/{folder}/suppData/{table}/members"
        return [
            r("POST", "/auth/token", "login", self.login, auth=False),
            r("GET", members, "retrieveListMembers", self.retrieve_member),
            r("POST", members, "mergeListMembers", self.merge_list, writes=True, asyncable=True),
            r(
                "POST",
                members,
                "deleteListMembers",
                self.delete_members_batch,
                action="delete",
                writes=True,
                asyncable=True,
            ),
            r("DELETE", members, "deleteListMembers", self.delete_members_query, writes=True),
            r("DELETE", members + "/{riid}", "deleteListMembers", self.delete_member, writes=True),
            r("GET", "/lists/{list}/listExtensions", "getProfileExtensions", self.list_pets),
            r("POST", "/lists/{list}/listExtensions", "createPet", self.create_pet, writes=True),
            r("GET", pet_members, "retrievePetMembers", self.retrieve_pet_row),
            r("POST", pet_members, "mergePetMembers", self.merge_pet, writes=True, asyncable=True),
            r(
                "POST",
                pet_members,
                "deletePetMembers",
                self.delete_pet_batch,
                action="delete",
                writes=True,
                asyncable=True,
            ),
            r(
                "DELETE",
                pet_members + "/{riid}",
                "deletePetMembers",
                self.delete_pet_row,
                writes=True,
            ),
            r("POST", "/folders", "createFolder", self.create_folder, writes=True),
            r(
                "POST",
                "/folders/{folder}/suppData",
                "createSuppTable",
                self.create_supp,
                writes=True,
            ),
            r("POST", supp_members, "mergeSuppData", self.merge_supp, writes=True, asyncable=True),
            r("GET", supp_members, "retrieveSuppData", self.retrieve_supp_row),
            r("DELETE", supp_members, "deleteSuppData", self.delete_supp_row, writes=True),
            r(
                "DELETE",
                "/folders/{folder}/suppData/{table}/table",
                "dropSuppTable",
                self.drop_supp,
                writes=True,
            ),
            r("GET", "/suppData", "listSuppTables", self.list_supp),
            r(
                "POST",
                "/campaigns/{campaign}/email",
                email_api,
                self.email,
                writes=True,
                asyncable=True,
            ),
            r(
                "POST",
                "/events/{event}",
                "customEvent",
                self.custom_event,
                writes=True,
                asyncable=True,
            ),
            r("GET", "/requests/{ids}", "getAsyncResponse", self.poll_get, async_only=True),
            r("POST", "/requests", "getAsyncResponse", self.poll_post, async_only=True),
        ]

    def resolve(
        self, method: str, path: str, query: QueryParams
    ) -> tuple[_Route, dict, bool] | None:
        if path == "/rest/api/ratelimit" and method == "GET":
            route = _Route("GET", re.compile(""), "rateLimit", self.ratelimit)
            return route, {}, False
        m = _PREFIX.fullmatch(path)
        if not m:
            return None
        is_async, rest = m.group(1) == "asyncApi", m.group(2)
        for route in self.routes:
            if route.method != method or route.action != query.get("action"):
                continue
            pm = route.pattern.fullmatch(rest)
            if pm is None:
                continue
            if route.async_only != is_async and not (is_async and route.asyncable):
                continue
            return route, pm.groupdict(), is_async
        return None

    # --- auth ------------------------------------------------------------------------------
    def login(self, call: _Call) -> Any:
        """Password login or token refresh (§1).

        Wrong credentials: 401 INVALID_USER_NAME_PASSWORD."""
        if {"user_name", "password", "auth_type"} & set(call.query.keys()):
            raise _invalid("Credentials must be sent in the form body, never in the URL")
        ctype = call.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise _bad_content("Content-Type must be application/x-www-form-urlencoded")
        try:
            form = parse_qs(call.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise _bad_content("form body is not UTF-8") from None
        auth_type = (form.get("auth_type") or [""])[0]
        if auth_type == "password":
            user = (form.get("user_name") or [""])[0]
            password = (form.get("password") or [""])[0]
            if not user or not password:
                raise _invalid("user_name and password are required")
            ok_user = hmac.compare_digest(user.encode(), self.settings.username.encode())
            ok_pass = hmac.compare_digest(password.encode(), self.settings.password.encode())
            if not (ok_user and ok_pass):
                raise ApiError(401, "INVALID_USER_NAME_PASSWORD", "Invalid user name or password")
        elif auth_type == "token":
            if not self.tokens.valid(
                call.headers.get("authorization"), self.faults.token_generation
            ):
                raise _bad_token()
        else:
            raise _invalid("auth_type must be password or token")
        token = self.tokens.issue(self.faults.token_generation)
        return {"authToken": token, "issuedAt": int(time.time() * 1000), "endPoint": call.base_url}

    def ratelimit(self, call: _Call) -> Any:
        out = []
        for route in self.routes:
            if callable(route.api):
                names = ["triggerEmail", "mergeTriggerEmail"]
            else:
                names = [route.api]
            prefix = "/rest/asyncApi/v1.3" if route.async_only else "/rest/api/v1.3"
            for name in dict.fromkeys(names):
                out.append(self._limit_entry(name, prefix + route.resource_path, route.method))
                if route.asyncable:
                    path = "/rest/asyncApi/v1.3" + route.resource_path
                    out.append(self._limit_entry(_async_api_name(name), path, route.method))
        unique = {(e["api"], e["resource_path"], e["verb"]): e for e in out}
        return list(unique.values())

    def _limit_entry(self, api: str, path: str, verb: str) -> dict[str, Any]:
        limit = self.settings.rate_limits.get(api, DEFAULT_RATE_LIMIT)
        return {
            "limit": limit,
            "api": api,
            "resource_path": path,
            "verb": verb,
            "description": f"{api}: at most {limit} calls per minute",
        }

    # --- lookups ----------------------------------------------------------------------------
    def _need_list(self, name: str) -> None:
        if not self.store.list_exists(name):
            raise ApiError(404, "LIST_NOT_FOUND", f"List {name} not found")

    def _need_folder(self, name: str) -> None:
        if not self.store.folder_exists(name):
            raise ApiError(404, "FOLDER_NOT_FOUND", f"Folder {name} not found")

    def _need_pet(self, list_name: str, pet: str) -> dict:
        self._need_list(list_name)
        found = self.store.pet(list_name, pet)
        if found is None:
            raise ApiError(404, "TABLE_NOT_FOUND", f"Profile extension {pet} not found")
        return found

    def _need_supp(self, folder: str, table: str) -> dict:
        self._need_folder(folder)
        found = self.store.supp_table(folder, table)
        if found is None:
            raise ApiError(404, "TABLE_NOT_FOUND", f"Supplemental table {table} not found")
        return found

    def _find_by(self, list_name: str, column: str, values: list[str]) -> list[dict]:
        if column == "RIID_":
            ints = [int(v) for v in values if v is not None and v.strip().isdigit()]
            return self.store.find_members(list_name, "riid", ints)
        if column in HASH_COLUMNS:
            values = [v.lower() for v in values if v is not None]
        return self.store.find_members(list_name, MEMBER_COLUMNS[column], values)

    def _query_attribute(self, value: str) -> str:
        if value not in QUERY_ATTRIBUTES:
            raise _invalid("qa must be one of r, e, c, m")
        return QUERY_ATTRIBUTES[value]

    # --- profile list members ------------------------------------------------------------------
    def merge_list(self, call: _Call) -> Any:
        """Merge up to 200 members (§2.1); each row answers with its RIID or MERGEFAILED."""
        body = _obj(call.json(), "request", {"recordData", "mergeRule"}, {"recordData"})
        names, records = _record_data(body["recordData"])
        call.records = len(records)
        rule = parse_merge_rule(body.get("mergeRule"))
        self._need_list(call.params["list"])
        results = self.merge_members(call.params["list"], names, records, rule, call.fail_indexes)
        return {
            "recordData": {
                "fieldNames": ["RIID_"],
                "records": [[str(r)] for r in results],
                "mapTemplateName": None,
            },
            "mergeRule": rule.echo(),
            "links": [
                {
                    "rel": "self",
                    "href": f"/rest/api/v1.3/lists/{call.params['list']}/members",
                    "method": "POST",
                }
            ],
        }

    def merge_members(
        self,
        list_name: str,
        names: list[str],
        records: list[list[str | None]],
        rule: MergeRule,
        fail_indexes: frozenset[int],
    ) -> list[int | str]:
        """The merge itself: one RIID or a MERGEFAILED string per record, one transaction."""
        upper = [n.upper() for n in names]
        if len(set(upper)) != len(upper):
            raise _invalid("fieldNames contains a duplicate (names are case-insensitive)")
        for name in upper:
            if name not in SYSTEM_COLUMNS and (problem := field_name_problem(name)):
                raise _invalid(problem)
        for col in (rule.match1, rule.match2):
            if col and col not in upper:
                raise _invalid(f"match column {col} is not in fieldNames")
        rows = [dict(zip(upper, rec, strict=True)) for rec in records]
        with self.store.lock:
            index = _MemberIndex()
            for col in (rule.match1, rule.match2):
                if col:
                    for m in self._find_by(list_name, col, [_blank(r[col]) for r in rows]):
                        index.add(m)
            results: list[int | str] = []
            inserts: dict[int, dict] = {}
            updates: dict[int, dict] = {}
            for i, row in enumerate(rows):
                if i in fail_indexes:
                    results.append(_row_failure("MERGEFAILED", i, INJECTED_FAILURE_CODE, "fault"))
                    continue
                outcome = self._merge_one(list_name, row, rule, index, inserts, updates)
                results.append(
                    outcome
                    if isinstance(outcome, int)
                    else "MERGEFAILED: " + f"Record {i} = {outcome}"
                )
            self.store.write_members(list_name, list(inserts.values()), list(updates.values()))
        return results

    def _merge_one(
        self,
        list_name: str,
        row: dict[str, str | None],
        rule: MergeRule,
        index: _MemberIndex,
        inserts: dict[int, dict],
        updates: dict[int, dict],
    ) -> int | str:
        v1 = _match_value(rule.match1, row[rule.match1])
        v2 = _match_value(rule.match2, row[rule.match2]) if rule.match2 else None
        if v1 is None:
            return f"MATCH_COLUMN_EMPTY: {rule.match1} is empty"
        if rule.operator == "AND" and v2 is None:
            return f"MATCH_COLUMN_EMPTY: {rule.match2} is empty"
        for col, value in ((rule.match1, v1), (rule.match2, v2)):
            if col == "RIID_" and value is not None and not value.isdigit():
                return f"INVALID_RIID: RIID_ {value!r} is not a number"
        candidates = index.find(rule.match1, v1)
        if rule.operator == "AND":
            col2 = MEMBER_COLUMNS[rule.match2 or ""]
            candidates = [m for m in candidates if str(m.get(col2)) == v2]
        elif not candidates and v2 is not None:
            candidates = index.find(rule.match2 or "", v2)
        if candidates:
            member = candidates[0]
            if rule.update_on_match == "NO_UPDATE":
                return int(member["riid"])
            changed = copy.deepcopy(member)
            problem = self._apply_values(changed, row, rule, inserting=False)
            if problem:
                return problem
            index.remove(member)
            member.clear()
            member.update(changed)
            index.add(member)
            if member["riid"] not in inserts:
                updates[member["riid"]] = member
            return int(member["riid"])
        if not rule.insert_on_no_match:
            return "NO_MATCHING_RECORD: no member matches and insertOnNoMatch is false"
        new: dict[str, Any] = {"fields": {}}
        problem = self._apply_values(new, row, rule, inserting=True)
        if problem:
            return problem
        new["riid"] = self.store.next_riids(1)[0]
        inserts[new["riid"]] = new
        index.add(new)
        return int(new["riid"])

    @staticmethod
    def _apply_values(
        member: dict, row: dict[str, str | None], rule: MergeRule, inserting: bool
    ) -> str | None:
        """Write one record's values into a member dict; returns a failure text or None."""
        for name, raw in row.items():
            value = _blank(raw)
            if name == "RIID_":
                continue
            if name == "EMAIL_PERMISSION_STATUS_":
                if value is None:
                    continue
                if value not in (rule.optin, rule.optout):
                    return f"INVALID_PERMISSION_STATUS: {value!r} is not optinValue/optoutValue"
                member["email_permission_status"] = "I" if value == rule.optin else "O"
            elif name == "EMAIL_FORMAT_":
                if value is None:
                    continue
                if value not in (rule.html, rule.text):
                    return f"INVALID_EMAIL_FORMAT: {value!r} is neither htmlValue nor textValue"
                member["email_format"] = "H" if value == rule.html else "T"
            elif name == "EMAIL_ADDRESS_":
                if value is not None and not _EMAIL_RE.fullmatch(value):
                    return "INVALID_EMAIL_ADDRESS: email address is not valid"
                member["email_address"] = value
                md5, sha256 = _email_hashes(value)
                if "EMAIL_MD5_HASH_" not in row:
                    member["email_md5_hash"] = md5
                if "EMAIL_SHA256_HASH_" not in row:
                    member["email_sha256_hash"] = sha256
            elif name in MEMBER_COLUMNS:
                member[MEMBER_COLUMNS[name]] = _match_value(name, value)
            else:
                member["fields"][name] = value
        if inserting and member.get("email_permission_status") is None:
            member["email_permission_status"] = rule.default_status
        empty = {
            "E": member.get("email_address") is None,
            "M": member.get("mobile_number") is None,
            "P": not member["fields"].get("POSTAL_STREET_1_"),
        }
        for channel in sorted(rule.reject_channels):
            if empty[channel]:
                return f"CHANNEL_EMPTY: channel {channel} is empty (rejectRecordIfChannelEmpty)"
        return None

    def retrieve_member(self, call: _Call) -> Any:
        """One member by qa/id with the fs fields; absent -> 404 RECIPIENT_NOT_FOUND."""
        list_name = call.params["list"]
        column = self._query_attribute(call.one("qa"))
        ident = call.one("id")
        fields = self._fs(call.one("fs"))
        self._need_list(list_name)
        found = self._find_by(list_name, column, [ident])
        if not found:
            raise ApiError(404, "RECIPIENT_NOT_FOUND", f"No recipient found with {column} {ident}")
        member = found[0]
        if fields == ["ALL"]:
            fields = [*MEMBER_COLUMNS, *sorted(member["fields"])]
        return {
            "recordData": {
                "fieldNames": fields,
                "records": [[self._member_value(member, f) for f in fields]],
                "mapTemplateName": None,
            },
            "mergeRule": None,
            "links": [],
        }

    @staticmethod
    def _fs(value: str) -> list[str]:
        if len(value) > MAX_FIELD_SELECTION_CHARS:
            raise _invalid(f"fs must be at most {MAX_FIELD_SELECTION_CHARS} characters")
        names = [n.strip().upper() for n in value.split(",") if n.strip()]
        if not names:
            raise _invalid("fs is empty")
        if names == ["ALL"]:
            return names
        for name in names:
            if name not in SYSTEM_COLUMNS and (problem := field_name_problem(name)):
                raise _invalid(problem)
        return names

    @staticmethod
    def _member_value(member: dict, name: str) -> str | None:
        if name in MEMBER_COLUMNS:
            value = member.get(MEMBER_COLUMNS[name])
            return None if value is None else str(value)
        return member["fields"].get(name)

    def delete_members_query(self, call: _Call) -> Any:
        """DELETE ?qa=&id= removes at most 10 matches; none -> 404 RECIPIENT_NOT_FOUND."""
        list_name = call.params["list"]
        column = self._query_attribute(call.one("qa"))
        ident = call.one("id")
        self._need_list(list_name)
        with self.store.lock:
            found = self._find_by(list_name, column, [ident])
            if not found:
                raise ApiError(
                    404, "RECIPIENT_NOT_FOUND", f"No recipient found with {column} {ident}"
                )
            self.store.delete_members(list_name, [m["riid"] for m in found[:MAX_QUERY_DELETES]])
        remaining = max(0, len(found) - MAX_QUERY_DELETES)
        return {
            "totalMatchedRecords": len(found),
            "remainingRecordCount": remaining,
            "hasMoreRecords": remaining > 0,
        }

    def delete_member(self, call: _Call) -> Any:
        list_name = call.params["list"]
        self._need_list(list_name)
        riid = call.params["riid"]
        if not riid.isdigit():
            raise _invalid(f"RIID {riid!r} is not a number")
        with self.store.lock:
            found = self._find_by(list_name, "RIID_", [riid])
            if found:
                self.store.delete_members(list_name, [int(riid)])
                row = [riid]
            else:
                row = [_row_failure("DELETEFAILED", 0, "RECIPIENT_NOT_FOUND", f"RIID {riid}")]
        return {"recordData": {"fieldNames": ["RIID_"], "records": [row], "mapTemplateName": None}}

    def _delete_ids(self, call: _Call) -> tuple[str, list[str]]:
        """Batch-delete body (§2.2). `ids` may be flat or an array of one-element arrays (the
        reference records both shapes)."""
        body = _obj(call.json(), "request", {"queryAttribute", "ids"}, {"queryAttribute", "ids"})
        column = self._query_attribute(body["queryAttribute"])
        ids = body["ids"]
        if not isinstance(ids, list) or not ids:
            raise _invalid("ids is null or empty")
        _check_count(len(ids), "ids")
        call.records = len(ids)
        flat = []
        for item in ids:
            if isinstance(item, list) and len(item) == 1:
                item = item[0]
            if not isinstance(item, str) or not item:
                raise _bad_content("each id must be a non-empty string")
            if len(item) > MAX_DELETE_ID_LENGTH:
                raise _invalid(f"ids must be at most {MAX_DELETE_ID_LENGTH} characters")
            flat.append(item)
        return column, flat

    def delete_members_batch(self, call: _Call) -> Any:
        list_name = call.params["list"]
        column, ids = self._delete_ids(call)
        self._need_list(list_name)
        rows = []
        with self.store.lock:
            index = _MemberIndex()
            for m in self._find_by(list_name, column, ids):
                index.add(m)
            doomed: list[int] = []
            for i, ident in enumerate(ids):
                found = index.find(column, ident)
                if i in call.fail_indexes:
                    rows.append([_row_failure("DELETEFAILED", i, INJECTED_FAILURE_CODE, "fault")])
                elif not found:
                    rows.append(
                        [
                            _row_failure(
                                "DELETEFAILED", i, "RECIPIENT_NOT_FOUND", f"{column} {ident}"
                            )
                        ]
                    )
                else:
                    doomed.extend(m["riid"] for m in found)
                    rows.append([str(found[0]["riid"])])
            self.store.delete_members(list_name, dict.fromkeys(doomed))
        return {"recordData": {"fieldNames": ["RIID_"], "records": rows, "mapTemplateName": None}}

    # --- profile extension tables --------------------------------------------------------------
    def list_pets(self, call: _Call) -> Any:
        self._need_list(call.params["list"])
        return [
            {
                "profileExtension": {"objectName": p["name"], "folderName": p["folder"]},
                "fields": p["fields"],
            }
            for p in self.store.pets(call.params["list"])
        ]

    def create_pet(self, call: _Call) -> Any:
        """Create a PET (§2.3); a duplicate name gives 400 PROFILE_EXTENSION_ALREADY_EXISTS."""
        body = _obj(call.json(), "request", {"profileExtension", "fields"}, {"profileExtension"})
        pe = _obj(
            body["profileExtension"],
            "profileExtension",
            {"objectName", "folderName"},
            {"objectName", "folderName"},
        )
        name, folder = pe["objectName"], pe["folderName"]
        if not isinstance(name, str) or not _OBJECT_NAME_RE.fullmatch(name):
            raise _invalid("objectName must start with a letter and use only A-Z a-z 0-9 _")
        fields = self._field_defs(body.get("fields"), PET_FIELD_TYPES, {"fieldName", "fieldType"})
        self._need_list(call.params["list"])
        if not isinstance(folder, str):
            raise _invalid("folderName must be a string")
        self._need_folder(folder)
        if not self.store.create_pet(call.params["list"], name, folder, fields):
            raise ApiError(
                400, "PROFILE_EXTENSION_ALREADY_EXISTS", f"Profile extension {name} already exists"
            )
        return True

    @staticmethod
    def _field_defs(value: Any, types: frozenset[str], keys: set[str]) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise _invalid("fields must be an array")
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in value:
            item = _obj(item, "fields", keys, {"fieldName", "fieldType"})
            name, ftype = item["fieldName"], item["fieldType"]
            problem = field_name_problem(name)
            if problem:
                raise _invalid(problem)
            if ftype not in types:
                raise _invalid(f"fieldType of {name} must be one of {sorted(types)}")
            if name.upper() in seen:
                raise _invalid(f"field {name} is defined twice (names are case-insensitive)")
            seen.add(name.upper())
            if item.get("dataExtractionKey") is not None and not isinstance(
                item["dataExtractionKey"], bool
            ):
                raise _invalid("dataExtractionKey must be true or false")
            out.append({k: item[k] for k in sorted(item)})
        return out

    def _pet_match(self, value: Any, name: str, required: bool) -> str | None:
        if value in (None, "") and not required:
            return None
        if value not in PET_MATCH_COLUMNS:
            raise _invalid("Match Column is null")
        return value

    def merge_pet(self, call: _Call) -> Any:
        """Merge PET rows (§2.3): flat body, match names without the trailing underscore."""
        body = _obj(
            call.json(),
            "request",
            {
                "recordData",
                "insertOnNoMatch",
                "updateOnMatch",
                "matchColumnName1",
                "matchColumnName2",
            },
            {"recordData"},
        )
        names, records = _record_data(body["recordData"])
        call.records = len(records)
        match1 = self._pet_match(body.get("matchColumnName1"), "matchColumnName1", True)
        match2 = self._pet_match(body.get("matchColumnName2"), "matchColumnName2", False)
        insert = _bool(body.get("insertOnNoMatch"), "insertOnNoMatch", True)
        update = _update_on_match(body.get("updateOnMatch"))
        list_name, pet_name = call.params["list"], call.params["pet"]
        pet = self._need_pet(list_name, pet_name)
        types = {f["fieldName"].upper(): f["fieldType"] for f in pet["fields"]}
        upper = [n.upper() for n in names]
        if len(set(upper)) != len(upper):
            raise _invalid("fieldNames contains a duplicate (names are case-insensitive)")
        unknown = [n for n in upper if n not in types and n not in LIST_MATCH_COLUMNS]
        if unknown:
            raise _invalid(f"fields not in profile extension {pet_name}: {', '.join(unknown)}")
        keys = [PET_MATCH_COLUMNS[m] for m in (match1, match2) if m]
        for key in keys:
            if key not in upper:
                raise _invalid(f"match column {key} is not in fieldNames")
        rows = [dict(zip(upper, rec, strict=True)) for rec in records]
        has_list_key = bool(PET_LIST_KEYS & set(upper))
        never_insert = bool(set(keys) & HASH_COLUMNS)
        results: list[str] = []
        with self.store.lock:
            index = _MemberIndex()
            for key in keys:
                for m in self._find_by(list_name, key, [_blank(r[key]) for r in rows]):
                    index.add(m)
            riids = {}
            for i, row in enumerate(rows):
                member = None
                for key in keys:
                    value = _match_value(key, row[key])
                    if value is not None and index.find(key, value):
                        member = index.find(key, value)[0]
                        break
                riids[i] = member
            existing = self.store.pet_rows_for(
                list_name, pet_name, [m["riid"] for m in riids.values() if m]
            )
            writes: dict[int, dict] = {}
            for i, row in enumerate(rows):
                member = riids[i]
                if i in call.fail_indexes:
                    failure = (INJECTED_FAILURE_CODE, "fault")
                elif not has_list_key:
                    failure = (
                        "NO_LIST_KEY",
                        "fieldNames must contain RIID_, EMAIL_ADDRESS_ or CUSTOMER_ID_",
                    )
                elif _blank(row[keys[0]]) is None:
                    failure = ("MATCH_COLUMN_EMPTY", f"{keys[0]} is empty")
                elif member is None:
                    failure = ("RECIPIENT_NOT_FOUND", "no profile list member matches")
                else:
                    riid = int(member["riid"])
                    current = writes.get(riid, existing.get(riid))
                    failure = None
                    if current is None and (not insert or never_insert):
                        failure = (
                            "NO_MATCHING_RECORD",
                            "no PET row matches and insertOnNoMatch is false",
                        )
                    elif current is not None and update == "NO_UPDATE":
                        results.append(str(riid))
                        continue
                    else:
                        values = {n: v for n, v in row.items() if n in types}
                        bad = [
                            f"{n} {p}"
                            for n, v in values.items()
                            if (p := _typed_value_problem(types[n], v))
                        ]
                        if bad:
                            failure = ("INVALID_FIELD_VALUE", "; ".join(bad))
                        else:
                            writes[riid] = {**(current or {}), **values}
                            results.append(str(riid))
                            continue
                results.append(_row_failure("MERGEFAILED", i, *failure))
            self.store.write_pet_rows(list_name, pet_name, writes)
        return {
            "recordData": {
                "fieldNames": ["RIID_"],
                "records": [[r] for r in results],
                "mapTemplateName": None,
            },
            "insertOnNoMatch": insert,
            "updateOnMatch": update,
            "matchColumnName1": match1,
            "matchColumnName2": match2,
            "links": [],
        }

    def retrieve_pet_row(self, call: _Call) -> Any:
        """One PET row by qa/id with the fs fields; absent -> 404 RECIPIENT_NOT_FOUND."""
        list_name, pet_name = call.params["list"], call.params["pet"]
        column = self._query_attribute(call.one("qa"))
        ident = call.one("id")
        fields = self._fs(call.one("fs"))
        pet = self._need_pet(list_name, pet_name)
        pet_fields = [f["fieldName"].upper() for f in pet["fields"]]
        if fields == ["ALL"]:
            fields = ["RIID_", *pet_fields]
        unknown = [f for f in fields if f != "RIID_" and f not in pet_fields]
        if unknown:
            raise _invalid(f"fields not in profile extension {pet_name}: {', '.join(unknown)}")
        found = self._find_by(list_name, column, [ident])
        rows = self.store.pet_rows_for(list_name, pet_name, [m["riid"] for m in found])
        riid = next((m["riid"] for m in found if m["riid"] in rows), None)
        if riid is None:
            raise ApiError(404, "RECIPIENT_NOT_FOUND", f"No {pet_name} row for {column} {ident}")
        values = rows[riid]
        record = [str(riid) if f == "RIID_" else values.get(f) for f in fields]
        return {"recordData": {"fieldNames": fields, "records": [record], "mapTemplateName": None}}

    def delete_pet_batch(self, call: _Call) -> Any:
        list_name, pet_name = call.params["list"], call.params["pet"]
        column, ids = self._delete_ids(call)
        self._need_pet(list_name, pet_name)
        rows = []
        with self.store.lock:
            index = _MemberIndex()
            for m in self._find_by(list_name, column, ids):
                index.add(m)
            candidates = [m["riid"] for i in ids for m in index.find(column, i)]
            existing = self.store.pet_rows_for(list_name, pet_name, candidates)
            doomed = []
            for i, ident in enumerate(ids):
                hits = [m["riid"] for m in index.find(column, ident) if m["riid"] in existing]
                if i in call.fail_indexes:
                    rows.append([_row_failure("DELETEFAILED", i, INJECTED_FAILURE_CODE, "fault")])
                elif not hits:
                    rows.append(
                        [
                            _row_failure(
                                "DELETEFAILED", i, "RECIPIENT_NOT_FOUND", f"{column} {ident}"
                            )
                        ]
                    )
                else:
                    doomed.extend(hits)
                    rows.append([str(hits[0])])
            self.store.delete_pet_rows(list_name, pet_name, dict.fromkeys(doomed))
        return {"recordData": {"fieldNames": ["RIID_"], "records": rows, "mapTemplateName": None}}

    def delete_pet_row(self, call: _Call) -> Any:
        list_name, pet_name, riid = call.params["list"], call.params["pet"], call.params["riid"]
        self._need_pet(list_name, pet_name)
        if not riid.isdigit():
            raise _invalid(f"RIID {riid!r} is not a number")
        with self.store.lock:
            if self.store.pet_rows_for(list_name, pet_name, [int(riid)]):
                self.store.delete_pet_rows(list_name, pet_name, [int(riid)])
                row = [riid]
            else:
                row = [_row_failure("DELETEFAILED", 0, "RECIPIENT_NOT_FOUND", f"RIID {riid}")]
        return {"recordData": {"fieldNames": ["RIID_"], "records": [row], "mapTemplateName": None}}

    # --- folders and supplemental tables -------------------------------------------------------
    def create_folder(self, call: _Call) -> Any:
        """Create a folder (§2.7); a duplicate is 400 FOLDER_ALREADY_EXISTS."""
        body = _obj(call.json(), "request", {"folderName"}, {"folderName"})
        name = body["folderName"]
        if not isinstance(name, str) or not _FOLDER_NAME_RE.fullmatch(name):
            raise _invalid(
                "folderName must be 1-100 characters of A-Z a-z 0-9 space ! - = @ _ [ ] { }"
            )
        folder_id = self.store.create_folder(name)
        if folder_id is None:
            raise ApiError(400, "FOLDER_ALREADY_EXISTS", f"Folder {name} already exists")
        return {"success": True, "folderId": folder_id, "errorMessage": None}

    def create_supp(self, call: _Call) -> Any:
        """Create a supplemental table (§2.4); a primary key is mandatory; a duplicate is
        400 TABLE_ALREADY_EXISTS."""
        body = _obj(call.json(), "request", {"table", "fields", "primaryKeys"}, {"table", "fields"})
        table = _obj(body["table"], "table", {"objectName"}, {"objectName"})
        name = table["objectName"]
        if not isinstance(name, str) or not _OBJECT_NAME_RE.fullmatch(name):
            raise _invalid("objectName must start with a letter and use only A-Z a-z 0-9 _")
        fields = self._field_defs(
            body["fields"], SUPP_FIELD_TYPES, {"fieldName", "fieldType", "dataExtractionKey"}
        )
        if not fields:
            raise _invalid("fields is empty")
        pks = body.get("primaryKeys")
        if not isinstance(pks, list) or not pks:
            raise _invalid("A primary key is mandatory: primaryKeys is null or empty")
        field_names = [f["fieldName"] for f in fields]
        if len(set(pks)) != len(pks) or not all(pk in field_names for pk in pks):
            raise _invalid("primaryKeys must name distinct fields of the table (case-sensitive)")
        self._need_folder(call.params["folder"])
        if self.store.supp_table_count() >= MAX_SUPP_TABLES:
            raise ApiError(
                400, "SUPP_TABLE_LIMIT_EXCEEDED", f"at most {MAX_SUPP_TABLES} supplemental tables"
            )
        if not self.store.create_supp_table(call.params["folder"], name, fields, pks):
            raise ApiError(400, "TABLE_ALREADY_EXISTS", f"Table {name} already exists")
        return True

    def merge_supp(self, call: _Call) -> Any:
        """Merge supplemental rows (§2.4): case-sensitive fieldNames, every PK column required;
        successful rows are echoed, failures are one-element MERGEFAILED rows."""
        body = _obj(
            call.json(),
            "request",
            {"recordData", "insertOnNoMatch", "updateOnMatch", "matchColumnNames"},
            {"recordData"},
        )
        names, records = _record_data(body["recordData"])
        call.records = len(records)
        if "matchColumnNames" in body:
            raise _invalid("matchColumnNames is only for tables without a primary key")
        insert = _bool(body.get("insertOnNoMatch"), "insertOnNoMatch", True)
        update = _update_on_match(body.get("updateOnMatch"))
        folder, table_name = call.params["folder"], call.params["table"]
        table = self._need_supp(folder, table_name)
        types = {f["fieldName"]: f["fieldType"] for f in table["fields"]}
        if len(set(names)) != len(names):
            raise _invalid("fieldNames contains a duplicate")
        unknown = [n for n in names if n not in types]
        if unknown:
            raise _invalid(f"unknown fields (names are case-sensitive): {', '.join(unknown)}")
        missing = [pk for pk in table["primary_keys"] if pk not in names]
        if missing:
            raise _invalid(f"all primary key columns are required; missing {', '.join(missing)}")
        rows = [dict(zip(names, rec, strict=True)) for rec in records]
        results: list[list[str | None]] = []
        with self.store.lock:
            keys = [Store.supp_key([r[pk] or "" for pk in table["primary_keys"]]) for r in rows]
            existing = self.store.supp_rows_for(folder, table_name, keys)
            writes: dict[str, dict] = {}
            for i, (row, key) in enumerate(zip(rows, keys, strict=True)):
                current = writes.get(key, existing.get(key))
                bad = [
                    f"{n} {p}" for n, v in row.items() if (p := _typed_value_problem(types[n], v))
                ]
                if i in call.fail_indexes:
                    failure = (INJECTED_FAILURE_CODE, "fault")
                elif any(_blank(row[pk]) is None for pk in table["primary_keys"]):
                    failure = ("PRIMARY_KEY_EMPTY", "a primary key value is empty")
                elif bad:
                    failure = ("INVALID_FIELD_VALUE", "; ".join(bad))
                elif current is None and not insert:
                    failure = ("NO_MATCHING_RECORD", "no row matches and insertOnNoMatch is false")
                else:
                    if current is None or update == "REPLACE_ALL":
                        writes[key] = {**(current or {}), **row}
                    results.append([row[n] for n in names])
                    continue
                results.append([_row_failure("MERGEFAILED", i, *failure)])
            self.store.write_supp_rows(folder, table_name, writes)
        return {
            "recordData": {"fieldNames": names, "records": results, "mapTemplateName": None},
            "insertOnNoMatch": insert,
            "updateOnMatch": update,
            "links": [],
        }

    def delete_supp_row(self, call: _Call) -> Any:
        """DELETE ?qa=PK1&qa=PK2&id=v1&id=v2: one row per request."""
        folder, table_name = call.params["folder"], call.params["table"]
        table = self._need_supp(folder, table_name)
        qa, ids = call.query.getlist("qa"), call.query.getlist("id")
        if sorted(qa) != sorted(table["primary_keys"]) or len(ids) != len(qa):
            raise _invalid("qa must list every primary key column once, with one id per qa")
        by_name = dict(zip(qa, ids, strict=True))
        key = Store.supp_key([by_name[pk] for pk in table["primary_keys"]])
        if self.store.delete_supp_row(folder, table_name, key):
            row: list[str | None] = list(ids)
        else:
            row = [_row_failure("DELETEFAILED", 0, "RECORD_NOT_FOUND", "no row has that key")]
        return {"recordData": {"fieldNames": qa, "records": [row], "mapTemplateName": None}}

    def retrieve_supp_row(self, call: _Call) -> Any:
        """GET ?qa=PK1&qa=PK2&id=v1&id=v2&fs=…: one row by its whole primary key (names are
        case-sensitive); the answer echoes recordData plus the merge-only attributes at their
        defaults, as Oracle's sample shows."""
        folder, table_name = call.params["folder"], call.params["table"]
        table = self._need_supp(folder, table_name)
        qa, ids = call.query.getlist("qa"), call.query.getlist("id")
        if sorted(qa) != sorted(table["primary_keys"]) or len(ids) != len(qa):
            raise _invalid("qa must list every primary key column once, with one id per qa")
        fs = call.one("fs")
        if len(fs) > MAX_FIELD_SELECTION_CHARS:
            raise _invalid(f"fs must be at most {MAX_FIELD_SELECTION_CHARS} characters")
        columns = [f["fieldName"] for f in table["fields"]]
        fields = [n.strip() for n in fs.split(",") if n.strip()]
        if [f.lower() for f in fields] == ["all"]:
            fields = columns
        unknown = [f for f in fields if f not in columns]
        if not fields or unknown:
            raise _invalid(f"unknown fields (names are case-sensitive): {', '.join(unknown)}")
        by_name = dict(zip(qa, ids, strict=True))
        key = Store.supp_key([by_name[pk] for pk in table["primary_keys"]])
        row = self.store.supp_rows_for(folder, table_name, [key]).get(key)
        if row is None:
            raise ApiError(404, "RECORD_NOT_FOUND", f"No record in {table_name} has that key")
        return {
            "recordData": {
                "fieldNames": fields,
                "records": [[row.get(f) for f in fields]],
                "mapTemplateName": None,
            },
            "insertOnNoMatch": False,
            "updateOnMatch": None,
            "links": [],
        }

    def drop_supp(self, call: _Call) -> Any:
        self._need_supp(call.params["folder"], call.params["table"])
        self.store.drop_supp_table(call.params["folder"], call.params["table"])
        return True

    def list_supp(self, call: _Call) -> Any:
        """GET /suppData?offset&limit (limit at most 200)."""
        try:
            offset = int(call.query.get("offset", "0"))
            limit = int(call.query.get("limit", str(MAX_RECORDS)))
        except ValueError:
            raise _invalid("offset and limit must be integers") from None
        if offset < 0 or not 1 <= limit <= MAX_RECORDS:
            raise _invalid(f"limit must be between 1 and {MAX_RECORDS}; offset must be >= 0")
        return [
            {
                "table": {"objectName": t["name"], "folderName": t["folder"]},
                "fields": t["fields"],
                "primaryKeys": t["primary_keys"],
            }
            for t in self.store.supp_tables(offset, limit)
        ]

    # --- email triggers and custom events ------------------------------------------------------
    def email(self, call: _Call) -> Any:
        """Trigger or merge-trigger a campaign (§2.5). Non-ASCII must arrive as \\uXXXX escapes:
        a raw non-ASCII byte anywhere in the body is 400 INVALID_REQUEST_CONTENT."""
        if not call.body.isascii():
            raise _bad_content("Non-ASCII characters must be escaped as \\uXXXX")
        body = call.json()
        if isinstance(body, dict) and "mergeTriggerRecordData" in body:
            return self._merge_trigger(call, body)
        body = _obj(body, "request", {"recipientData"}, {"recipientData"})
        recipients = self._recipients(call, body["recipientData"])
        campaign = self._need_campaign(call.params["campaign"])
        results: list[dict[str, Any]] = []
        sends: list[tuple[int, str | None, list]] = []
        for i, (recipient, optional) in enumerate(recipients):
            member, error = self._resolve(recipient)
            if i in call.fail_indexes:
                error = f"{INJECTED_FAILURE_CODE}: fault"
            results.append(self._send(member, error, optional, sends))
        self.store.record_email_sends(campaign["name"], sends)
        return results

    def _need_campaign(self, name: str) -> dict:
        campaign = self.store.campaign(name)
        if campaign is None:
            raise ApiError(404, "CAMPAIGN_NOT_FOUND", f"Campaign {name} not found")
        return campaign

    @staticmethod
    def _send(member: dict | None, error: str | None, optional: list, sends: list) -> dict:
        if member is None or error:
            riid = -1 if member is None else int(member["riid"])
            return {"recipientId": riid, "success": False, "errorMessage": error}
        if member.get("email_permission_status") == "O":
            return {
                "recipientId": int(member["riid"]),
                "success": False,
                "errorMessage": "RECIPIENT_OPTED_OUT: the recipient has opted out of email",
            }
        sends.append((int(member["riid"]), member.get("email_address"), optional))
        return {"recipientId": int(member["riid"]), "success": True, "errorMessage": None}

    def _merge_trigger(self, call: _Call, body: dict) -> Any:
        body = _obj(body, "request", {"mergeTriggerRecordData", "mergeRule"}, {"mergeRule"})
        data = _obj(
            body["mergeTriggerRecordData"],
            "mergeTriggerRecordData",
            {"fieldNames", "mergeTriggerRecords"},
            {"fieldNames", "mergeTriggerRecords"},
        )
        names = _field_names(data["fieldNames"])
        items = data["mergeTriggerRecords"]
        if not isinstance(items, list) or not items:
            raise _invalid("mergeTriggerRecords is empty")
        _check_count(len(items), "records")
        call.records = len(items)
        records, optionals = [], []
        for item in items:
            item = _obj(
                item, "mergeTriggerRecords", {"fieldValues", "optionalData"}, {"fieldValues"}
            )
            records.append(_row_values(item["fieldValues"], len(names), "fieldValues"))
            optionals.append(_optional_data(item.get("optionalData")))
        rule = parse_merge_rule(body["mergeRule"])
        campaign = self._need_campaign(call.params["campaign"])
        list_name = campaign["list"]
        if list_name is None:
            lists = self.store.list_names()
            if len(lists) != 1:
                raise _invalid(f"Campaign {campaign['name']} has no profile list")
            list_name = lists[0]
        self._need_list(list_name)
        merged = self.merge_members(list_name, names, records, rule, call.fail_indexes)
        riids = [r for r in merged if isinstance(r, int)]
        members = {m["riid"]: m for m in self.store.find_members(list_name, "riid", riids)}
        results, sends = [], []
        for outcome, optional in zip(merged, optionals, strict=True):
            if isinstance(outcome, int):
                results.append(self._send(members.get(outcome), None, optional, sends))
            else:
                results.append({"recipientId": -1, "success": False, "errorMessage": outcome})
        self.store.record_email_sends(campaign["name"], sends)
        return results

    def _recipients(self, call: _Call, value: Any) -> list[tuple[dict, list]]:
        if not isinstance(value, list) or not value:
            raise _invalid("recipientData is null or empty")
        _check_count(len(value), "recipients")
        call.records = len(value)
        out = []
        for item in value:
            item = _obj(item, "recipientData", {"recipient", "optionalData"}, {"recipient"})
            recipient = _obj(
                item["recipient"],
                "recipient",
                {*_RECIPIENT_KEYS, "listName", "emailFormat"},
                {"listName"},
            )
            _obj(recipient["listName"], "listName", {"folderName", "objectName"}, {"objectName"})
            if recipient.get("emailFormat") not in (None, "HTML_FORMAT", "TEXT_FORMAT"):
                raise _invalid("emailFormat must be HTML_FORMAT or TEXT_FORMAT")
            for key in _RECIPIENT_KEYS:
                v = recipient.get(key)
                if isinstance(v, bool) or (v is not None and not isinstance(v, (str, int))):
                    raise _bad_content(f"recipient {key} must be a string")
            out.append((recipient, _optional_data(item.get("optionalData"))))
        return out

    def _resolve(self, recipient: dict) -> tuple[dict | None, str | None]:
        """Find a recipient by the first identifier given, in its listName."""
        list_name = recipient["listName"]["objectName"]
        if not self.store.list_exists(list_name):
            return None, f"LIST_NOT_FOUND: List {list_name} not found"
        for key, column in _RECIPIENT_KEYS.items():
            value = recipient.get(key)
            if value in (None, "", -1, 0):
                continue
            found = self._find_by(list_name, column, [str(value)])
            if not found:
                return None, f"RECIPIENT_NOT_FOUND: no recipient with {column} {value}"
            return found[0], None
        return None, "RECIPIENT_NOT_FOUND: the recipient has no identifier"

    def custom_event(self, call: _Call) -> Any:
        """Trigger a custom event (§2.6); recipients repeated in one call all fail with
        MULTIPLE_RECIPIENTS_FOUND."""
        body = _obj(call.json(), "request", {"customEvent", "recipientData"}, {"recipientData"})
        mapping = body.get("customEvent")
        if mapping is not None:
            mapping = _obj(
                mapping,
                "customEvent",
                {"eventStringDataMapping", "eventNumberDataMapping", "eventDateDataMapping"},
            )
            if not all(v is None or isinstance(v, str) for v in mapping.values()):
                raise _bad_content("customEvent mappings must be strings or null")
        recipients = self._recipients(call, body["recipientData"])
        event = call.params["event"]
        if not self.store.custom_event_exists(event):
            raise ApiError(404, "EVENT_NOT_FOUND", f"Custom event {event} not found")
        resolved = [self._resolve(r) for r, _ in recipients]
        seen: dict[int, int] = {}
        for member, _ in resolved:
            if member is not None:
                seen[member["riid"]] = seen.get(member["riid"], 0) + 1
        results, events = [], []
        for i, ((member, error), (_, optional)) in enumerate(
            zip(resolved, recipients, strict=True)
        ):
            if i in call.fail_indexes:
                error = f"{INJECTED_FAILURE_CODE}: fault"
            elif member is not None and seen[member["riid"]] > 1:
                error = (
                    "MULTIPLE_RECIPIENTS_FOUND: the recipient appears more than once in the call"
                )
            if member is None or error:
                riid = -1 if member is None else int(member["riid"])
                results.append({"recipientId": riid, "success": False, "errorMessage": error})
                continue
            events.append((int(member["riid"]), optional))
            results.append(
                {"recipientId": int(member["riid"]), "success": True, "errorMessage": None}
            )
        self.store.record_custom_events(event, events)
        return results

    # --- async -------------------------------------------------------------------------------
    def accept_async(self, api: str, status: str, response: Any) -> dict[str, Any]:
        raw = f"{secrets.token_hex(4)}::{int(time.time())}".encode()
        request_id = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        ready_at = time.time() + self.settings.async_processing_seconds
        self.store.save_async_request(request_id, api, ready_at, status, response)
        return {
            "requestId": request_id,
            "apiName": api,
            "status": "REQUEST_ACCEPTED",
            "links": [
                {
                    "rel": "asyncResponse",
                    "href": f"/rest/asyncApi/v1.3/requests/{request_id}",
                    "method": "GET",
                }
            ],
        }

    def _poll_one(self, request_id: str) -> dict[str, Any]:
        saved = self.store.async_request(request_id)
        now = time.time()
        if saved is None or now > saved["ready_at"] + ASYNC_RETENTION_SECONDS:
            return {
                "response": {
                    **error_body("RESPONSE_PURGED", "Response Message Purged"),
                    "errorDetails": "[]",
                },
                "requestId": request_id,
                "apiName": "",
                "timeZone": None,
                "requestTime": saved["request_time"] if saved else "",
                "requestProcessedTime": "",
                "status": "UNKNOWN",
            }
        item = {
            "requestId": request_id,
            "apiName": saved["api"],
            "timeZone": "UTC",
            "requestTime": saved["request_time"],
        }
        if now < saved["ready_at"]:
            pending = error_body("PROCESSING_REQUEST", "Request is still being processed")
            return {
                "response": {**pending, "errorDetails": "[]"},
                **item,
                "requestProcessedTime": "",
                "status": "IN_PROGRESS",
            }
        processed = datetime.fromtimestamp(saved["ready_at"], UTC).isoformat(
            timespec="milliseconds"
        )
        return {
            "response": saved["response"],
            **item,
            "requestProcessedTime": processed,
            "status": saved["status"],
        }

    def poll_get(self, call: _Call) -> Any:
        """Poll up to 10 comma-separated ids: one id gives one object, several give an array."""
        ids = [i for i in call.params["ids"].split(",") if i]
        if not ids or len(ids) > 10:
            raise _invalid("give between 1 and 10 request ids")
        items = [self._poll_one(i) for i in ids]
        return items[0] if len(items) == 1 else items

    def poll_post(self, call: _Call) -> Any:
        body = _obj(call.json(), "request", {"requestIds"}, {"requestIds"})
        ids = body["requestIds"]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise _invalid("requestIds must be a non-empty array of strings")
        if len(ids) > MAX_RECORDS:
            raise _invalid(f"at most {MAX_RECORDS} request ids")
        return [self._poll_one(i) for i in ids]

    # --- one HTTP call -----------------------------------------------------------------------
    def run(self, route: _Route, call: _Call, is_async: bool) -> tuple[int, Any, str | None]:
        """Run a handler; returns (HTTP status, JSON payload, errorCode or None)."""
        try:
            payload = route.handler(call)
        except ApiError as exc:
            if is_async and exc.code not in ("INVALID_REQUEST_CONTENT", "RECIPIENT_LIMIT_EXCEEDED"):
                return 202, self.accept_async(call.api, "FAILURE", exc.body()), None
            return exc.status, exc.body(), exc.code
        if is_async:
            return 202, self.accept_async(call.api, "SUCCESS", payload), None
        return 200, payload, None


class _EmulatorApp(Starlette):
    """Starlette app that also remembers the server's raw `send`, so a fault can cut the TCP
    connection (uvicorn's send is a method of the cycle that owns the transport)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["responsys.raw_send"] = send
        await super().__call__(scope, receive, send)


async def _drop_connection(scope: Any) -> None:
    cycle = getattr(scope.get("responsys.raw_send"), "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        await asyncio.sleep(DROP_FALLBACK_SLEEP_SECONDS)
        return
    transport.close()
    # Let connection_lost run so the server stops trying to answer on this connection.
    for _ in range(5):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0.01)


def create_app(store: Store, settings: EmulatorSettings, faults: FaultInjector) -> Starlette:
    """The emulator as an ASGI app (serve it with uvicorn; EmulatorServer does)."""
    emulator = _Emulator(store, settings, faults)

    async def record(
        method: str, path: str, api: str, status: int, code: str | None, n: int
    ) -> None:
        await run_in_threadpool(store.record_api_call, method, path, api, status, code, n)

    async def handle(request: Request) -> Response:
        scope, method = request.scope, request.method
        path = scope["path"]
        found = emulator.resolve(method, path, request.query_params)
        if found is None:
            await record(method, path, "unknown", 404, "RESOURCE_NOT_FOUND", 0)
            body = error_body("RESOURCE_NOT_FOUND", f"No resource at {method} {path}")
            return JSONResponse(body, status_code=404)
        route, params, is_async = found
        declared = request.headers.get("content-length", "0")
        too_big = declared.isdigit() and int(declared) > settings.max_body_bytes
        chunks, size = [], 0
        if not too_big:
            async for chunk in request.stream():
                size += len(chunk)
                if size > settings.max_body_bytes:
                    too_big = True
                    break
                chunks.append(chunk)
        body = b"".join(chunks)
        api = route.api(body) if callable(route.api) else route.api
        if is_async and route.asyncable:
            api = _async_api_name(api)
        if too_big:
            await record(method, path, api, 0, "PAYLOAD_TOO_LARGE", 0)
            await _drop_connection(scope)
            return Response(status_code=413)

        async def fail(status: int, code: str, detail: str) -> Response:
            await record(method, path, api, status, code, 0)
            return JSONResponse(error_body(code, detail), status_code=status)

        taken = faults.take(api, route.writes)
        if "slow" in taken:
            await asyncio.sleep(taken["slow"].delay_seconds)
        if "server_error" in taken:
            await record(method, path, api, 503, "SERVICE_UNAVAILABLE", 0)
            html = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
            return Response(html, status_code=503, media_type="text/html")
        if "rate_limit" in taken:
            return await fail(401, "API_LIMIT_EXCEEDED", f"Request limit for {api} exceeded")
        if "capacity" in taken:
            faults.trip_capacity()
        if api != "login" and faults.capacity_exceeded():
            return await fail(
                401, "INTERNAL_CAPACITY_LIMIT_EXCEEDED", "Account internal capacity limit exceeded"
            )
        if route.auth and not emulator.tokens.valid(
            request.headers.get("authorization"), faults.token_generation
        ):
            return await fail(500, "UNEXPECTED_EXCEPTION", "Not a valid authentication token")
        if not emulator.limiter.allow(api):
            return await fail(401, "API_LIMIT_EXCEEDED", f"Request limit for {api} exceeded")
        merge_failed = taken.get("merge_failed")
        call = _Call(
            api=api,
            params=params,
            query=request.query_params,
            headers=request.headers,
            body=body,
            base_url=str(request.base_url).rstrip("/"),
            fail_indexes=merge_failed.record_indexes if merge_failed else frozenset(),
        )
        status, payload, code = await run_in_threadpool(
            emulator.run, route, call, is_async and route.asyncable
        )
        if "drop_after_send" in taken:
            await record(method, path, api, 0, "CONNECTION_DROPPED", call.records)
            await _drop_connection(scope)
            return Response(status_code=204)
        await record(method, path, api, status, code, call.records)
        return JSONResponse(payload, status_code=status)

    methods = ["GET", "POST", "DELETE", "PUT", "PATCH"]
    return _EmulatorApp(routes=[Route("/{path:path}", handle, methods=methods)])


class EmulatorServer:
    """The emulator on 127.0.0.1 in a daemon thread, with its state in `state_dir`."""

    def __init__(
        self, state_dir: Path, settings: EmulatorSettings, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the emulator listens on 127.0.0.1 only")
        self.state_dir = Path(state_dir)
        self.settings = settings
        self.host = "127.0.0.1"
        self.port = port
        self.store = Store(self.state_dir / "responsys_emulator.sqlite")
        self.faults = FaultInjector()
        self.base_url: str | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"EmulatorServer(base_url={self.base_url!r}, state_dir={str(self.state_dir)!r})"

    def start(self, timeout_seconds: float = 10.0) -> str:
        """Serve and return the base URL once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        port = sock.getsockname()[1]
        app = create_app(self.store, self.settings, self.faults)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="responsys-emulator",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_seconds
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Responsys emulator did not start on 127.0.0.1:{port}")
            time.sleep(0.01)
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Stop serving; the store stays open for inspection."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_seconds)
        self._server = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = [
    "ApiError",
    "EmulatorServer",
    "EmulatorSettings",
    "FAULT_KINDS",
    "FaultInjector",
    "MergeRule",
    "create_app",
    "default_rate_limits",
    "field_name_problem",
    "parse_merge_rule",
]
