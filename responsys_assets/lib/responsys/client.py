"""The Responsys client's session: login and token refresh, pacing, bounded retries, and the
mapping of answers to results or errors. The calls per resource come from the mixins."""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from responsys_assets.lib.responsys.apis import _APIS, _Api, _rate_key
from responsys_assets.lib.responsys.async_api import AsyncRequestsMixin
from responsys_assets.lib.responsys.batching import _dumps
from responsys_assets.lib.responsys.campaigns import CampaignsMixin
from responsys_assets.lib.responsys.endpoints import normalise_endpoint, validate_api_endpoint
from responsys_assets.lib.responsys.errors import (
    _ACCESS_CODES,
    AccessDenied,
    CapacityLimitExceeded,
    InvalidCredentials,
    OutcomeUnknown,
    RequestRejected,
    ResponsysError,
    ResponsysThrottled,
    ResponsysTimeout,
    ResponsysUnavailable,
    _is_token_error,
    classify,
)
from responsys_assets.lib.responsys.limits import (
    ASYNC_PREFIX,
    MAX_BODY_BYTES,
    MAX_FIELD_SELECTION_CHARS,
    REST_PREFIX,
    RateLimiter,
    backoff_delay,
)
from responsys_assets.lib.responsys.lists import ListsMixin
from responsys_assets.lib.responsys.models import RowResult
from responsys_assets.lib.responsys.redaction import _EMAIL_LOG_FILTER, _EMAIL_RE
from responsys_assets.lib.responsys.responses import (
    _json_or_none,
    _parse_rate_limits,
    parse_recipient_results,
    parse_record_rows,
)
from responsys_assets.lib.responsys.stats import ClientStats
from responsys_assets.lib.responsys.tables import TablesMixin

# Query parameters: a mapping, or pairs when a name repeats (supplemental retrieve: qa=PK1&qa=PK2).
QueryParams = dict[str, str] | list[tuple[str, str]]
_MEMBER_NOT_FOUND_CODES = frozenset(
    {"RECORD_NOT_FOUND", "RECIPIENT_NOT_FOUND", "NO_RECORDS_FOUND", "MEMBER_NOT_FOUND"}
)


class ResponsysClient(ListsMixin, TablesMixin, CampaignsMixin, AsyncRequestsMixin):
    """Responsys REST v1.3 over httpx with login, token refresh, pacing and bounded retries.

    Not shared between threads on purpose: calls are sequential, one client per account.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        username: str,
        password: str,
        timeout: float = 30.0,
        max_attempts: int = 5,
        max_retry_seconds: float = 300.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        logger: logging.Logger | None = None,
        refresh_after_seconds: float = 6000.0,
        rate_window_seconds: float = 60.0,
        rate_margin: float = 0.03,
        backoff_base_seconds: float = 1.0,
        throttle_backoff_seconds: float = 5.0,
        async_poll_seconds: float = 300.0,
        async_max_polls: int = 120,
    ) -> None:
        if not username or not password:
            raise InvalidCredentials("Responsys user name and password are required")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._login_endpoint = normalise_endpoint(endpoint)
        self._username = username
        self._password = password
        self._max_attempts = max_attempts
        self._max_retry_seconds = max_retry_seconds
        self._clock = clock
        self._sleep = sleep
        self._log = logger or logging.getLogger(__package__)  # one logger for the package
        self._refresh_after = refresh_after_seconds
        self._backoff_base = backoff_base_seconds
        self._throttle_backoff = throttle_backoff_seconds
        self._async_poll_seconds = async_poll_seconds
        self._async_max_polls = async_max_polls
        self._rng = random.Random()
        self._limiter = RateLimiter(
            window=rate_window_seconds, margin=rate_margin, clock=clock, sleep=sleep
        )
        for name in ("httpx", "httpcore"):
            if _EMAIL_LOG_FILTER not in logging.getLogger(name).filters:
                logging.getLogger(name).addFilter(_EMAIL_LOG_FILTER)
        self._http = httpx.Client(
            transport=transport, timeout=httpx.Timeout(timeout), follow_redirects=False
        )
        self._token: str | None = None
        self._old_tokens: deque[str] = deque(maxlen=4)
        self._token_time = 0.0
        self._api_base: str | None = None
        self._rate_limits: dict[str, int] | None = None
        self._limit_cuts: dict[str, int] = {}  # lowered after API_LIMIT_EXCEEDED despite pacing
        self.stats = ClientStats()

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> ResponsysClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return (
            f"ResponsysClient(endpoint={self._login_endpoint!r}, "
            f"api_endpoint={self._api_base!r}, logged_in={self._token is not None})"
        )

    @property
    def api_endpoint(self) -> str | None:
        """The base URL returned by login (None before the first call)."""
        return self._api_base

    def snapshot(self) -> dict[str, Any]:
        return self.stats.snapshot()

    # -- redaction -------------------------------------------------------------------

    def _redact(self, text: str | None) -> str | None:
        """Remove secrets and email addresses from text that came from the server."""
        if not text:
            return text
        for secret in [self._password, self._token, *self._old_tokens]:
            if secret:
                text = text.replace(secret, "[redacted]")
        return _EMAIL_RE.sub("[email]", text)

    def _failed(self, error: ResponsysError) -> ResponsysError:
        self.stats.errors[classify(error)] += 1
        return error

    # -- authentication --------------------------------------------------------------

    def login(self) -> None:
        """Password login (§1); the returned endPoint is validated before any token goes there."""
        response = self._send(
            _APIS["login"],
            f"{self._login_endpoint}{REST_PREFIX}/auth/token",
            data={"user_name": self._username, "password": self._password, "auth_type": "password"},
            authorized=False,
        )
        self._accept_token(response, _APIS["login"])
        self.stats.logins += 1
        self._log.info("responsys login ok; api host %s", urlsplit(self._api_base or "").hostname)

    def refresh_token(self) -> None:
        """Trade the current token for a new one (auth_type=token); log in again if refused."""
        if self._token is None or self._api_base is None:
            self.login()
            return
        try:
            response = self._send(
                _APIS["login"],
                f"{self._api_base}{REST_PREFIX}/auth/token",
                data={"auth_type": "token"},
            )
            self._accept_token(response, _APIS["login"])
            self.stats.refreshes += 1
            self._log.info("responsys token refreshed")
        except (InvalidCredentials, RequestRejected, ResponsysUnavailable, ResponsysTimeout) as exc:
            self._log.warning(
                "responsys token refresh failed (%s); logging in again", classify(exc)
            )
            self.login()

    def _accept_token(self, response: httpx.Response, api: _Api) -> None:
        if not response.is_success:
            error = self._error_from_response(response, api)
            if isinstance(error, (ResponsysThrottled, CapacityLimitExceeded)):
                raise self._failed(error)
            raise self._failed(
                InvalidCredentials(
                    f"Responsys login refused (HTTP {response.status_code}"
                    f"{' ' + error.error_code if error.error_code else ''}): {error.detail}",
                    http_status=response.status_code,
                    error_code=error.error_code,
                    detail=error.detail,
                    api=api.name,
                )
            )
        body = _json_or_none(response)
        token = body.get("authToken") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise self._failed(
                InvalidCredentials("Responsys login answered without an authToken", api=api.name)
            )
        endpoint = validate_api_endpoint(str(body.get("endPoint") or ""), self._login_endpoint)
        if self._token:
            self._old_tokens.append(self._token)
        self._token = token
        self._token_time = self._clock()
        self._api_base = endpoint

    def _ensure_token(self) -> None:
        if self._token is None:
            self.login()
        elif self._clock() - self._token_time >= self._refresh_after:
            self.refresh_token()

    # -- rate limits -----------------------------------------------------------------

    def rate_limits(self) -> dict[str, int]:
        """The account's per-API limits from GET /rest/api/ratelimit, keyed "VERB /path"; an
        empty dict (defaults apply) when the call fails."""
        if self._rate_limits is None:
            self._ensure_token()
            limits: dict[str, int] = {}
            try:
                response = self._send(
                    _APIS["get_rate_limits"], f"{self._api_base}/rest/api/ratelimit"
                )
                if not response.is_success:
                    raise self._error_from_response(response, _APIS["get_rate_limits"])
                limits = _parse_rate_limits(_json_or_none(response))
            except ResponsysError as exc:
                self._log.warning(
                    "responsys ratelimit unavailable (%s); using conservative defaults",
                    classify(exc),
                )
            self._rate_limits = limits
        return self._rate_limits

    def _limit_for(self, api: _Api) -> tuple[str, int]:
        limits = self._rate_limits or {}
        key = _rate_key(api.verb, api.resource_path)
        if key in limits:
            limit = limits[key]
        else:
            key, limit = f"default:{api.name}", api.default_limit
        return key, self._limit_cuts.get(key, limit)

    # -- transport -------------------------------------------------------------------

    def _send(
        self,
        api: _Api,
        url: str,
        *,
        params: QueryParams | None = None,
        content: bytes | None = None,
        data: dict[str, str] | None = None,
        authorized: bool = True,
        write: bool | None = None,
        records: int = 0,
    ) -> httpx.Response:
        """Send one request with pacing and bounded retries. Returns a success response or a
        non-retryable error response; raises when retries run out or the outcome is unknown."""
        write = api.write if write is None else write
        key, limit = self._limit_for(api)
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            headers = {"Accept": "application/json"}
            if content is not None:
                headers["Content-Type"] = "application/json"
            if authorized:
                headers["Authorization"] = self._token or ""
            self.stats.paced_seconds += self._limiter.acquire(key, limit)
            self.stats.calls[api.name] += 1
            try:
                response = self._http.request(
                    api.verb, url, params=params, content=content, data=data, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Never reached the server: safe to retry, writes included.
                error: ResponsysError = (
                    ResponsysTimeout
                    if isinstance(exc, httpx.TimeoutException)
                    else ResponsysUnavailable
                )(f"{api.name}: cannot connect to Responsys ({type(exc).__name__})", api=api.name)
            except httpx.TransportError as exc:
                if write:
                    raise self._failed(
                        OutcomeUnknown(
                            f"{api.name}: the request was sent but no answer came "
                            f"({type(exc).__name__}); {records} records may or may not have been "
                            "applied - reconcile before resending",
                            api=api.name,
                            records=records,
                        )
                    ) from None
                kind = (
                    ResponsysTimeout
                    if isinstance(exc, httpx.TimeoutException)
                    else ResponsysUnavailable
                )
                error = kind(
                    f"{api.name}: no answer from Responsys ({type(exc).__name__})", api=api.name
                )
            else:
                if response.is_success:
                    return response
                error = self._error_from_response(response, api)
                if isinstance(error, CapacityLimitExceeded):
                    raise self._failed(error)
                if isinstance(error, ResponsysThrottled):
                    self.stats.throttled += 1
                    # Someone else shares the account's budget: pace a little slower from now.
                    limit = max(1, int(limit * 0.9))
                    self._limit_cuts[key] = limit
                elif isinstance(error, ResponsysUnavailable):
                    if write and response.status_code == 504:
                        raise self._failed(
                            OutcomeUnknown(
                                f"{api.name}: gateway timeout after the request was sent; "
                                f"{records} records may or may not have been applied",
                                http_status=504,
                                api=api.name,
                                records=records,
                            )
                        )
                else:
                    return response  # a definite answer (4xx, token error): caller decides
            finally:
                self._limiter.release(key)
            if attempt >= self._max_attempts:
                raise self._failed(error)
            base = (
                self._throttle_backoff
                if isinstance(error, ResponsysThrottled)
                else self._backoff_base
            )
            delay = backoff_delay(attempt, base, 60.0, self._rng)
            if self._clock() - started + delay > self._max_retry_seconds:
                raise self._failed(error)
            self.stats.retries += 1
            self._log.warning(
                "responsys %s: %s, retry %d/%d in %.1fs",
                api.name,
                classify(error),
                attempt,
                self._max_attempts - 1,
                delay,
            )
            self._sleep(delay)

    def _error_from_response(self, response: httpx.Response, api: _Api) -> ResponsysError:
        body = _json_or_none(response)
        code = detail = None
        if isinstance(body, dict):
            code = body.get("errorCode")
            detail = body.get("detail") or body.get("title") or body.get("errorMessage")
        if detail is None:
            detail = response.text[:300] if response.text else response.reason_phrase
        return self._error_for_code(
            str(code) if code else None, self._redact(str(detail)), response.status_code, api
        )

    def _error_for_code(
        self, code: str | None, detail: str | None, status: int | None, api: _Api
    ) -> ResponsysError:
        label = f"HTTP {status}" if status else "async result"
        message = f"{api.name}: {label}{' ' + code if code else ''}: {detail}"
        kw = {"http_status": status, "error_code": code, "detail": detail, "api": api.name}
        if code == "API_LIMIT_EXCEEDED" or status == 429:
            return ResponsysThrottled(message, **kw)
        if code == "INTERNAL_CAPACITY_LIMIT_EXCEEDED":
            return CapacityLimitExceeded(message, **kw)
        if _is_token_error(code, detail):
            return InvalidCredentials(message, **kw)
        if code in _ACCESS_CODES:
            return AccessDenied(message, **kw)
        if code == "UNABLE_TO_SUBMIT_ASYNC_REQUEST" or (status is not None and status >= 500):
            return ResponsysUnavailable(message, **kw)
        if status is not None and 400 <= status < 500 or (status is None and code):
            return RequestRejected(message, **kw)
        return ResponsysError(message, **kw)

    def _call(
        self,
        api: _Api,
        path: str,
        *,
        params: QueryParams | None = None,
        body: Any = None,
        records: int = 0,
        async_mode: bool = False,
        expected_codes: frozenset[str] = frozenset(),
    ) -> Any:
        """A data call: size check, token, ratelimit table, then (async) submit and poll.

        Errors whose code is in `expected_codes` are raised without counting as errors: the
        caller treats them as answers (e.g. FOLDER_ALREADY_EXISTS)."""
        content = None
        if body is not None:
            content = _dumps(body)
            if len(content) > MAX_BODY_BYTES:
                raise ValueError(
                    f"{api.name}: request body is {len(content)} bytes; Responsys accepts at most "
                    f"{MAX_BODY_BYTES} (use batches())"
                )
        self._ensure_token()
        self.rate_limits()
        prefix = ASYNC_PREFIX if async_mode else REST_PREFIX
        payload = self._authorized(
            api,
            prefix + path,
            params=params,
            content=content,
            records=records,
            expected_codes=expected_codes,
        )
        if records:
            self.stats.records_sent[api.name] += records
        if async_mode:
            payload = self._await_async(api, payload, records)
        return payload

    def _authorized(
        self,
        api: _Api,
        path: str,
        *,
        params: QueryParams | None = None,
        content: bytes | None = None,
        records: int = 0,
        expected_codes: frozenset[str] = frozenset(),
    ) -> Any:
        """Send with the token; a rejected token leads to one fresh login and one resend."""
        for relogin in (False, True):
            url = f"{self._api_base}{path}"
            response = self._send(api, url, params=params, content=content, records=records)
            if response.is_success:
                return _json_or_none(response)
            error = self._error_from_response(response, api)
            if isinstance(error, InvalidCredentials) and not relogin:
                self._log.info("responsys %s: token rejected; logging in again", api.name)
                self.login()
                continue
            if error.error_code in expected_codes:
                raise error
            raise self._failed(error)
        raise AssertionError("unreachable")  # pragma: no cover

    def _rows(
        self, api: _Api, body: Any, expected: int, *, recipients: bool = False
    ) -> list[RowResult]:
        try:
            rows = (
                parse_recipient_results(body, expected)
                if recipients
                else parse_record_rows(body, expected)
            )
        except OutcomeUnknown as exc:
            exc.api = api.name
            raise self._failed(exc) from None
        failed = sum(1 for r in rows if not r.ok)
        if failed:
            self.stats.records_failed[api.name] += failed
            self.stats.errors["rejected_record"] += failed
        self._log.info("responsys %s: %d rows, %d failed", api.name, len(rows), failed)
        return rows

    # -- retrieve (the list, PET and supplemental-table lookups) ----------------------

    def _retrieve(
        self, api: _Api, path: str, params: QueryParams, field_names: Sequence[str]
    ) -> dict[str, Any] | None:
        """One record as {field name: value}, or None on a documented not-found answer.

        Oracle documents no error code for "nothing matched"; a 404 is what public clients see
        (ethyca/fides treats 404 as "no member found"), so the codes in
        _MEMBER_NOT_FOUND_CODES mean None and any other error is raised.
        """
        query = [*(params.items() if isinstance(params, dict) else params)]
        query.append(("fs", _field_selection(field_names)))
        try:
            body = self._call(api, path, params=query, expected_codes=_MEMBER_NOT_FOUND_CODES)
        except RequestRejected as exc:
            if exc.error_code in _MEMBER_NOT_FOUND_CODES:
                return None
            raise
        data = body.get("recordData") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not data.get("records"):
            return None
        return dict(zip(data.get("fieldNames") or [], data["records"][0], strict=False))


def _field_selection(field_names: Sequence[str]) -> str:
    """The `fs` parameter: the names comma-separated, or `all` when there are none or they pass
    the documented 150-character limit of `fs` (the caller then picks its fields out)."""
    joined = ",".join(field_names)
    return joined if joined and len(joined) <= MAX_FIELD_SELECTION_CHARS else "all"
