"""Responsys vocabulary the emulator enforces: request limits, system and match columns, field
types, the name rules of reference §4, value checks by field type, derived email hashes."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

MAX_RECORDS = 200
MAX_DELETE_ID_LENGTH = 500
MAX_QUERY_DELETES = 10
MAX_FIELD_SELECTION_CHARS = 150  # `fs` of every retrieve call
MAX_SUPP_TABLES = 250

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


def _email_hashes(email: str | None) -> tuple[str | None, str | None]:
    if email is None:
        return None, None
    norm = email.strip().lower().encode()
    return hashlib.md5(norm).hexdigest(), hashlib.sha256(norm).hexdigest()
