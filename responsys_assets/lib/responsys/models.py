"""Typed requests and results (merge rule, recipient, per-row result, PET), checked when built
so that a call Responsys would refuse fails before any network."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from responsys_assets.lib.responsys.batching import _check_count

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


def _query_attribute(value: str) -> str:
    if value not in QUERY_ATTRIBUTES:
        raise ValueError(f"query_attribute must be one of {sorted(QUERY_ATTRIBUTES)}")
    return value


def _delete_body(query_attribute: str, ids: Sequence[str]) -> dict[str, Any]:
    if query_attribute not in QUERY_ATTRIBUTES:
        raise ValueError(f"query_attribute must be one of {sorted(QUERY_ATTRIBUTES)}")
    _check_count(len(ids), "ids")
    for value in ids:
        if not isinstance(value, str) or not value or len(value) > 500:
            raise ValueError("each id must be a non-empty string of at most 500 characters")
    return {"queryAttribute": query_attribute, "ids": list(ids)}
