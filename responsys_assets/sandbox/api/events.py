"""Custom events (§2.6): trigger an event for recipients of a profile list."""

from __future__ import annotations

from typing import Any

from responsys_assets.sandbox.api.base import _EndpointBase
from responsys_assets.sandbox.api.context import _Call
from responsys_assets.sandbox.api.errors import ApiError, _bad_content
from responsys_assets.sandbox.api.faults import INJECTED_FAILURE_CODE
from responsys_assets.sandbox.api.parsing import _obj


class EventEndpoints(_EndpointBase):
    """POST /events/{event}."""

    def custom_event(self, call: _Call) -> Any:
        """Trigger a custom event (§2.6); recipients repeated in one call all fail with
        MULTIPLE_RECIPIENTS_FOUND."""
        body = _obj(call.json(), "request", {"customEvent", "recipientData"}, {"recipientData"})
        mapping = body.get("customEvent")
        if mapping is not None:
            mapping = _obj(
                mapping,
                "customEvent",
                {"eventStringDataMapping", "eventNumberDataMapping", "eventDateDataMapping"},
            )
            if not all(v is None or isinstance(v, str) for v in mapping.values()):
                raise _bad_content("customEvent mappings must be strings or null")
        recipients = self._recipients(call, body["recipientData"])
        event = call.params["event"]
        if not self.store.custom_event_exists(event):
            raise ApiError(404, "EVENT_NOT_FOUND", f"Custom event {event} not found")
        resolved = [self._resolve(r) for r, _ in recipients]
        seen: dict[int, int] = {}
        for member, _ in resolved:
            if member is not None:
                seen[member["riid"]] = seen.get(member["riid"], 0) + 1
        results, events = [], []
        for i, ((member, error), (_, optional)) in enumerate(
            zip(resolved, recipients, strict=True)
        ):
            if i in call.fail_indexes:
                error = f"{INJECTED_FAILURE_CODE}: fault"
            elif member is not None and seen[member["riid"]] > 1:
                error = (
                    "MULTIPLE_RECIPIENTS_FOUND: the recipient appears more than once in the call"
                )
            if member is None or error:
                riid = -1 if member is None else int(member["riid"])
                results.append({"recipientId": riid, "success": False, "errorMessage": error})
                continue
            events.append((int(member["riid"]), optional))
            results.append(
                {"recipientId": int(member["riid"]), "success": True, "errorMessage": None}
            )
        self.store.record_custom_events(event, events)
        return results
