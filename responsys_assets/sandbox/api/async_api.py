"""The async API: accepting a request under a request id, and polling for its result."""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from responsys_assets.sandbox.api.base import _EndpointBase
from responsys_assets.sandbox.api.context import _Call
from responsys_assets.sandbox.api.errors import _invalid, error_body
from responsys_assets.sandbox.api.parsing import _obj
from responsys_assets.sandbox.api.vocabulary import MAX_RECORDS

ASYNC_RETENTION_SECONDS = 24 * 3600


class AsyncEndpoints(_EndpointBase):
    """GET /requests/{ids} and POST /requests, plus accept_async for asyncable routes."""

    def accept_async(self, api: str, status: str, response: Any) -> dict[str, Any]:
        raw = f"{secrets.token_hex(4)}::{int(time.time())}".encode()
        request_id = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        ready_at = time.time() + self.settings.async_processing_seconds
        self.store.save_async_request(request_id, api, ready_at, status, response)
        return {
            "requestId": request_id,
            "apiName": api,
            "status": "REQUEST_ACCEPTED",
            "links": [
                {
                    "rel": "asyncResponse",
                    "href": f"/rest/asyncApi/v1.3/requests/{request_id}",
                    "method": "GET",
                }
            ],
        }

    def _poll_one(self, request_id: str) -> dict[str, Any]:
        saved = self.store.async_request(request_id)
        now = time.time()
        if saved is None or now > saved["ready_at"] + ASYNC_RETENTION_SECONDS:
            return {
                "response": {
                    **error_body("RESPONSE_PURGED", "Response Message Purged"),
                    "errorDetails": "[]",
                },
                "requestId": request_id,
                "apiName": "",
                "timeZone": None,
                "requestTime": saved["request_time"] if saved else "",
                "requestProcessedTime": "",
                "status": "UNKNOWN",
            }
        item = {
            "requestId": request_id,
            "apiName": saved["api"],
            "timeZone": "UTC",
            "requestTime": saved["request_time"],
        }
        if now < saved["ready_at"]:
            pending = error_body("PROCESSING_REQUEST", "Request is still being processed")
            return {
                "response": {**pending, "errorDetails": "[]"},
                **item,
                "requestProcessedTime": "",
                "status": "IN_PROGRESS",
            }
        processed = datetime.fromtimestamp(saved["ready_at"], UTC).isoformat(
            timespec="milliseconds"
        )
        return {
            "response": saved["response"],
            **item,
            "requestProcessedTime": processed,
            "status": saved["status"],
        }

    def poll_get(self, call: _Call) -> Any:
        """Poll up to 10 comma-separated ids: one id gives one object, several give an array."""
        ids = [i for i in call.params["ids"].split(",") if i]
        if not ids or len(ids) > 10:
            raise _invalid("give between 1 and 10 request ids")
        items = [self._poll_one(i) for i in ids]
        return items[0] if len(items) == 1 else items

    def poll_post(self, call: _Call) -> Any:
        body = _obj(call.json(), "request", {"requestIds"}, {"requestIds"})
        ids = body["requestIds"]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise _invalid("requestIds must be a non-empty array of strings")
        if len(ids) > MAX_RECORDS:
            raise _invalid(f"at most {MAX_RECORDS} request ids")
        return [self._poll_one(i) for i in ids]
