"""Responsys name rules, checked before any API call so a bad config fails with a clear message.

Field names follow the Responsys field-name rules (reference doc §4). Object names (lists, PETs,
supplemental tables, campaigns, custom events) have no documented rule that we could find; we
apply the field character set and the 30-character limit, which every name Responsys shows in
its own docs satisfies. Folder names follow the folder rules (§2.7).
"""

from __future__ import annotations

import re

__all__ = [
    "InvalidResponsysName",
    "ORACLE_RESERVED_WORDS",
    "RESERVED_SINGLE_LETTERS",
    "SYSTEM_COLUMNS",
    "validate_field_name",
    "validate_folder_name",
    "validate_object_name",
]

MAX_FIELD_NAME_LENGTH = 30
MAX_OBJECT_NAME_LENGTH = 30
MAX_FOLDER_NAME_LENGTH = 100

_FIELD_CHARS = re.compile(r"[A-Za-z0-9$#_]")
_FOLDER_CHARS = re.compile(r"[A-Za-z0-9 !\-=@_\[\]{}]")

RESERVED_SINGLE_LETTERS = frozenset("AEGKMPTU")

# Oracle SQL reserved words (V$RESERVED_WORDS with RESERVED='Y', plus common keywords Oracle
# rejects as column names). Responsys also names ID as forbidden.
ORACLE_RESERVED_WORDS = frozenset(
    """
    ACCESS ADD ALL ALTER AND ANY AS ASC AUDIT BETWEEN BY CHAR CHECK CLUSTER COLUMN COMMENT
    COMPRESS CONNECT CREATE CURRENT DATE DECIMAL DEFAULT DELETE DESC DISTINCT DROP ELSE
    EXCLUSIVE EXISTS FILE FLOAT FOR FROM GRANT GROUP HAVING ID IDENTIFIED IMMEDIATE IN
    INCREMENT INDEX INITIAL INSERT INTEGER INTERSECT INTO IS LEVEL LIKE LOCK LONG MAXEXTENTS
    MINUS MLSLABEL MODE MODIFY NOAUDIT NOCOMPRESS NOT NOWAIT NULL NUMBER OF OFFLINE ON ONLINE
    OPTION OR ORDER PCTFREE PRIOR PRIVILEGES PUBLIC RAW RENAME RESOURCE REVOKE ROW ROWID
    ROWNUM ROWS SELECT SESSION SET SHARE SIZE SMALLINT START SUCCESSFUL SYNONYM SYSDATE TABLE
    THEN TO TRIGGER UID UNION UNIQUE UPDATE USER VALIDATE VALUES VARCHAR VARCHAR2 VIEW
    WHENEVER WHERE WITH
    """.split()
)

# System columns of profile lists and PETs (reference doc §4); they end with "_" by design.
SYSTEM_COLUMNS = frozenset(
    """
    RIID_ CREATED_SOURCE_IP_ CUSTOMER_ID_ EMAIL_ADDRESS_ EMAIL_DOMAIN_ EMAIL_ISP_ EMAIL_FORMAT_
    EMAIL_PERMISSION_STATUS_ EMAIL_DELIVERABILITY_STATUS_ EMAIL_PERMISSION_REASON_
    EMAIL_MD5_HASH_ EMAIL_SHA256_HASH_ MOBILE_NUMBER_ MOBILE_COUNTRY_ MOBILE_PERMISSION_STATUS_
    MOBILE_DELIVERABILITY_STATUS_ MOBILE_PERMISSION_REASON_ POSTAL_STREET_1_ POSTAL_STREET_2_
    CITY_ STATE_ POSTAL_CODE_ CREATED_DATE_ MODIFIED_DATE_ CREATED_BY_LOAD_JOB_ID_
    LAST_MOD_BY_LOAD_JOB_ID_ LAST_BULK_LOAD_ID_
    """.split()
)


class InvalidResponsysName(ValueError):
    """A name Responsys would reject; the message says where it came from and why."""

    def __init__(self, message: str, *, name: str, where: str, reason: str) -> None:
        super().__init__(message)
        self.name = name
        self.where = where
        self.reason = reason


def _fail(where: str, label: str, name: str, reason: str) -> InvalidResponsysName:
    prefix = f"{where}: " if where else ""
    return InvalidResponsysName(
        f"{prefix}{label} {name!r} {reason}", name=name, where=where, reason=reason
    )


def _check_identifier(name: str, *, label: str, where: str, max_length: int) -> None:
    if not isinstance(name, str) or not name:
        raise _fail(where, label, str(name), "is empty")
    bad = [ch for ch in name if not _FIELD_CHARS.fullmatch(ch)]
    if bad:
        raise _fail(where, label, name, f"has a character Responsys does not allow ({bad[0]!r})")
    if len(name) > max_length:
        raise _fail(
            where, label, name, f"is {len(name)} characters long; the limit is {max_length}"
        )
    if not name[0].isascii() or not name[0].isalpha():
        raise _fail(where, label, name, "must start with a letter")


def validate_field_name(name: str, *, where: str) -> str:
    """Check a list/PET/table column name; system columns such as EMAIL_ADDRESS_ are accepted.

    `where` names the export (e.g. "export 'vip_list'"); the message adds the field.
    Returns the name unchanged so callers can validate inline.
    """
    _check_identifier(name, label="field", where=where, max_length=MAX_FIELD_NAME_LENGTH)
    upper = name.upper()
    if upper in SYSTEM_COLUMNS:
        return name
    if name.endswith("_"):
        raise _fail(where, "field", name, "ends with '_', which Responsys keeps for system columns")
    if upper in RESERVED_SINGLE_LETTERS:
        raise _fail(where, "field", name, "is a single letter Responsys reserves")
    if upper in ORACLE_RESERVED_WORDS:
        raise _fail(where, "field", name, "is an Oracle reserved word")
    return name


def validate_object_name(name: str, *, kind: str, where: str) -> str:
    """Check a list, PET, supplemental table, campaign or custom event name.

    Oracle documents no object-name rule that we found; we apply the field character set
    (`A-Z a-z 0-9 $ # _`), a leading letter and at most 30 characters. `kind` ("list", "PET",
    ...) names the object in the message.
    """
    _check_identifier(name, label=f"{kind} name", where=where, max_length=MAX_OBJECT_NAME_LENGTH)
    return name


def validate_folder_name(name: str, *, where: str) -> str:
    """Check a folder name: `A-Z a-z 0-9 space ! - = @ _ [ ] { }`, at most 100 characters."""
    if not isinstance(name, str) or not name:
        raise _fail(where, "folder name", str(name), "is empty")
    bad = [ch for ch in name if not _FOLDER_CHARS.fullmatch(ch)]
    if bad:
        raise _fail(
            where, "folder name", name, f"has a character Responsys does not allow ({bad[0]!r})"
        )
    if len(name) > MAX_FOLDER_NAME_LENGTH:
        raise _fail(
            where,
            "folder name",
            name,
            f"is {len(name)} characters long; the limit is {MAX_FOLDER_NAME_LENGTH}",
        )
    return name
