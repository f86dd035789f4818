"""The emulated account: credentials, per-API rate limits and the limits it enforces."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_RATE_LIMIT = 1000


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
