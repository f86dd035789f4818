"""Request-body parsing shared by the endpoints: strict JSON objects, recordData, optionalData,
identifier normalisation, and the list merge rule (MergeRule, parse_merge_rule)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from responsys_assets.sandbox.api.errors import ApiError, _bad_content, _invalid
from responsys_assets.sandbox.api.vocabulary import (
    HASH_COLUMNS,
    LIST_MATCH_COLUMNS,
    MAX_RECORDS,
    SYSTEM_COLUMNS,
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
