"""Turning profiles into Responsys records: column lists and string values, kept in line.

Every record of a call shares one `fieldNames` list and each row is positional, so columns are
chosen once per export and every row is built from that same list (the misalignment Segment's
list upsert suffers from cannot happen here).
"""

from __future__ import annotations

from datetime import datetime

from responsys_assets.config import MergeRuleConfig
from responsys_assets.defs.exports.changes import PendingChange
from responsys_assets.lib.responsys import MergeRule

# Match column (config spelling) -> (list system column, profile column)
IDENTIFIERS = {
    "RIID": ("RIID_", "riid"),
    "CUSTOMER_ID": ("CUSTOMER_ID_", "customer_id"),
    "EMAIL_ADDRESS": ("EMAIL_ADDRESS_", "email"),
    "EMAIL_SHA256_HASH": ("EMAIL_SHA256_HASH_", "email_sha256"),
}


def as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def list_columns(rule: MergeRuleConfig, fields: dict[str, str]) -> list[tuple[str, str]]:
    """(Responsys column, profile column) pairs: match columns first, then email, then fields."""
    columns: list[tuple[str, str]] = []
    for match in (rule.match_column_1, rule.match_column_2):
        if match:
            columns.append(IDENTIFIERS[match])
    if rule.insert_on_no_match and "EMAIL_SHA256_HASH" not in (
        rule.match_column_1,
        rule.match_column_2,
    ):
        columns.append(IDENTIFIERS["EMAIL_ADDRESS"])
    columns.extend(fields.items())
    seen: set[str] = set()
    return [c for c in columns if not (c[0] in seen or seen.add(c[0]))]


def record_values(profile: dict, columns: list[tuple[str, str]]) -> dict[str, str]:
    return {target: as_text(profile.get(source)) for target, source in columns}


def missing_identifier(profile: dict, rule: MergeRuleConfig) -> str | None:
    """Why this profile cannot be matched by the rule, or None when it can."""
    _, source = IDENTIFIERS[rule.match_column_1]
    if profile.get(source) in (None, ""):
        return f"no {source} to match on {rule.match_column_1}"
    return None


def merge_rule(rule: MergeRuleConfig) -> MergeRule:
    return MergeRule(
        insert_on_no_match=rule.insert_on_no_match,
        update_on_match=rule.update_on_match,
        match_column_1=IDENTIFIERS[rule.match_column_1][0],
        match_column_2=IDENTIFIERS[rule.match_column_2][0] if rule.match_column_2 else None,
        match_operator="NONE",
        optin_value=rule.optin_value,
        optout_value=rule.optout_value,
        default_permission_status=rule.default_permission_status,
    )


def chunks(items: list, size: int = 200) -> list[list]:
    """Split into API-sized calls (the runner's batches are already at most this size)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def matchable(changes: list, rule: MergeRuleConfig, outcome) -> list:
    """The changes the merge rule can match; the others go to `outcome.rejected` with why."""
    ready = []
    for change in changes:
        problem = missing_identifier(change.profile, rule)
        if problem:
            outcome.rejected.append(
                (change.contact_key, change.profile.get("riid"), "rejected_record", problem)
            )
        else:
            ready.append(change)
    return ready


# contact_key prefixes (002_audiences.sql) -> the profile column they carry
_KEY_PREFIXES = {"riid": "riid", "cust": "customer_id", "email": "email_sha256"}


def known_identifiers(change: PendingChange) -> dict:
    """The change's profile, with the identifier its contact_key carries filled in when missing.

    An exit can outlive the contact's profile row; its contact_key ('riid:<n>', 'cust:<id>',
    'email:<sha256>') still says who to remove.
    """
    profile = dict(change.profile)
    prefix, _, value = change.contact_key.partition(":")
    column = _KEY_PREFIXES.get(prefix)
    if column and value and profile.get(column) in (None, ""):
        if column == "riid":
            profile[column] = int(value) if value.isdigit() else None
        else:
            profile[column] = value
    return profile
