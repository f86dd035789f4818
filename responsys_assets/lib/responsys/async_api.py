"""The asynchronous variant of the data calls (§2.8): the submit answers a requestId, which is
polled in a bounded loop until the wrapped response is there."""

from __future__ import annotations

import json
from typing import Any

from responsys_assets.lib.responsys.apis import _APIS, _Api, _segment
from responsys_assets.lib.responsys.errors import OutcomeUnknown, ResponsysError
from responsys_assets.lib.responsys.limits import ASYNC_PREFIX
from responsys_assets.lib.responsys.responses import _pick_async_result

_ASYNC_PENDING = frozenset(
    {"IN_PROGRESS", "PROCESSING_REQUEST", "REQUEST_ACCEPTED", "UNKNOWN", "QUEUED", "PENDING"}
)


class AsyncRequestsMixin:
    """Polling for ResponsysClient's `_call(async_mode=True)`; uses its `_authorized`,
    `_ensure_token`, `_error_for_code`, `_failed`, `_redact`, `_clock` and `_sleep`."""

    def _await_async(self, api: _Api, accepted: Any, records: int) -> Any:
        """Poll an accepted async request (§2.8) in a bounded loop; return the wrapped response."""
        request_id = accepted.get("requestId") if isinstance(accepted, dict) else None
        if not request_id:
            raise self._failed(
                OutcomeUnknown(
                    f"{api.name}: async submit answered without a requestId",
                    api=api.name,
                    records=records,
                )
            )
        started = self._clock()
        delay = 0.1
        for _ in range(self._async_max_polls):
            self._sleep(delay)
            result = _pick_async_result(self._poll_once(request_id), request_id)
            status = str(result.get("status") or "").upper()
            response = result.get("response")
            if isinstance(response, str):
                try:
                    response = json.loads(response)
                except ValueError:
                    pass
            code = response.get("errorCode") if isinstance(response, dict) else None
            if status == "RESPONSE_PURGED" or code == "RESPONSE_PURGED":
                raise self._failed(
                    OutcomeUnknown(
                        f"{api.name}: async result {request_id} was purged before it was read",
                        api=api.name,
                        records=records,
                        request_id=request_id,
                    )
                )
            pending = (
                status in _ASYNC_PENDING
                or code == "PROCESSING_REQUEST"
                or (not status and response is None)
            )
            if not pending:
                if code:
                    detail = response.get("detail") or response.get("title")
                    raise self._failed(
                        self._error_for_code(code, self._redact(str(detail)), None, api)
                    )
                if status != "SUCCESS":
                    raise self._failed(
                        ResponsysError(
                            f"{api.name}: async request {request_id} ended with status {status}",
                            api=api.name,
                        )
                    )
                return response
            if self._clock() - started > self._async_poll_seconds:
                break
            delay = min(delay * 2, 5.0)
        raise self._failed(
            OutcomeUnknown(
                f"{api.name}: async request {request_id} not finished after "
                f"{self._clock() - started:.0f}s of polling; check it later by requestId",
                api=api.name,
                records=records,
                request_id=request_id,
            )
        )

    def _poll_once(self, request_id: str) -> Any:
        """GET /rest/asyncApi/v1.3/requests/{id} (one id gives one object)."""
        self._ensure_token()
        path = f"{ASYNC_PREFIX}/requests/{_segment(request_id, what='requestId')}"
        return self._authorized(_APIS["poll_async_request"], path)
