"""The Responsys APIs the client calls: each one's key in the account's ratelimit table, a
conservative default limit, and whether it writes (a lost answer leaves the outcome unknown)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote


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


_PREFIX_RE = re.compile(r"^/rest/(?:api|asyncapi|haapi|haasyncapi)/v1\.3", re.IGNORECASE)


def _rate_key(verb: str, resource_path: str) -> str:
    path = _PREFIX_RE.sub("", resource_path.strip())
    path = re.sub(r"\{[^}]*\}", "{}", path).rstrip("/").lower()
    return f"{verb.upper()} {path}"


def _segment(name: str, *, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} is empty")
    return quote(name, safe="")
