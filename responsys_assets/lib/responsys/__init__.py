"""Oracle Responsys REST v1.3 client: login, pacing under the account's rate limits, bounded
retries, and per-row results. The modules below are internal; import from here.

Facts come from /work/shared/reference/responsys-api.md (section numbers in the modules refer to
it). The client is plain httpx; the Dagster resource wraps it elsewhere. One client per account
per process: its pacing only knows about its own calls.
"""

from __future__ import annotations

from responsys_assets.lib.responsys.batching import batches
from responsys_assets.lib.responsys.client import ResponsysClient
from responsys_assets.lib.responsys.endpoints import normalise_endpoint, validate_api_endpoint
from responsys_assets.lib.responsys.errors import (
    AccessDenied,
    CapacityLimitExceeded,
    InsecureEndpoint,
    InvalidCredentials,
    OutcomeUnknown,
    RecordRejected,
    RequestRejected,
    ResponsysError,
    ResponsysThrottled,
    ResponsysTimeout,
    ResponsysUnavailable,
    classify,
)
from responsys_assets.lib.responsys.limits import (
    MAX_BODY_BYTES,
    MAX_RECORDS_PER_CALL,
    RateLimiter,
    allowed_per_window,
    backoff_delay,
    pacing_delay,
)
from responsys_assets.lib.responsys.models import MergeRule, PetInfo, Recipient, RowResult
from responsys_assets.lib.responsys.responses import parse_recipient_results, parse_record_rows
from responsys_assets.lib.responsys.stats import ClientStats

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
    "allowed_per_window",
    "backoff_delay",
    "batches",
    "classify",
    "normalise_endpoint",
    "pacing_delay",
    "parse_recipient_results",
    "parse_record_rows",
    "validate_api_endpoint",
]
