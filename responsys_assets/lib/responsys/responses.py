"""Reading Responsys answers into results: per-row and per-recipient outcomes, the ratelimit
table and async poll answers; a body that cannot be matched to the inputs is OutcomeUnknown."""

from __future__ import annotations

import re
from typing import Any

import httpx

from responsys_assets.lib.responsys.apis import _rate_key
from responsys_assets.lib.responsys.errors import OutcomeUnknown
from responsys_assets.lib.responsys.models import RowResult

_ROW_FAILURE_RE = re.compile(
    r"^(?P<prefix>MERGEFAILED|DELETEFAILED)\s*:\s*"
    r"(?:Record\s+\d+\s*=\s*)?(?:(?P<code>[A-Z][A-Z0-9_]{2,})\s*(?::|$))?"
)
_LEADING_CODE_RE = re.compile(r"^\s*([A-Z][A-Z0-9_]{2,})(?=\s*(?::|$|\s))")


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


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
