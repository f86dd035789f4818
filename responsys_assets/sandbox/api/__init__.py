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

The package has one module per concern: `vocabulary` (names, columns, types, limits), `errors`,
`settings`, `faults` (fault injection and rate limiting), `parsing` (request bodies, merge rule),
`context` and `base` (what handlers share), one module of endpoints per resource (`auth`,
`lists`, `pets`, `supplemental`, `campaigns`, `events`, `async_api`), `app` (routing, dispatch,
the ASGI app) and `server` (EmulatorServer).
"""

from responsys_assets.sandbox.api.app import create_app
from responsys_assets.sandbox.api.errors import ApiError
from responsys_assets.sandbox.api.faults import FAULT_KINDS, FaultInjector
from responsys_assets.sandbox.api.parsing import MergeRule, parse_merge_rule
from responsys_assets.sandbox.api.server import EmulatorServer
from responsys_assets.sandbox.api.settings import EmulatorSettings, default_rate_limits
from responsys_assets.sandbox.api.vocabulary import field_name_problem

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
