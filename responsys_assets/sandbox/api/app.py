"""The ASGI app: the route table and dispatch (_Emulator composes the endpoint mixins), faults,
auth and throttling around each call, and create_app."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from responsys_assets.sandbox.api.async_api import AsyncEndpoints
from responsys_assets.sandbox.api.auth import AuthEndpoints, _Tokens
from responsys_assets.sandbox.api.campaigns import CampaignEndpoints
from responsys_assets.sandbox.api.context import _async_api_name, _Call, _Route
from responsys_assets.sandbox.api.errors import ApiError, error_body
from responsys_assets.sandbox.api.events import EventEndpoints
from responsys_assets.sandbox.api.faults import FaultInjector, _RateLimiter
from responsys_assets.sandbox.api.lists import ListEndpoints
from responsys_assets.sandbox.api.pets import PetEndpoints
from responsys_assets.sandbox.api.settings import EmulatorSettings
from responsys_assets.sandbox.api.supplemental import SupplementalEndpoints
from responsys_assets.sandbox.store import Store

DROP_FALLBACK_SLEEP_SECONDS = 3600.0

_PREFIX = re.compile(r"/rest/(api|asyncApi)/v1\.3(/.*)")


class _Emulator(
    AuthEndpoints,
    ListEndpoints,
    PetEndpoints,
    SupplementalEndpoints,
    CampaignEndpoints,
    EventEndpoints,
    AsyncEndpoints,
):
    """Request handling: every handler validates, applies to the Store and builds the answer."""

    def __init__(self, store: Store, settings: EmulatorSettings, faults: FaultInjector) -> None:
        self.store = store
        self.settings = settings
        self.faults = faults
        self.tokens = _Tokens(settings.token_lifetime_seconds)
        self.limiter = _RateLimiter(settings.rate_limits, settings.rate_window_seconds)
        self.routes = self._routes()

    def _routes(self) -> list[_Route]:
        def r(method: str, path: str, api: Any, handler: Any, **kw: Any) -> _Route:
            regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
            return _Route(method, re.compile(regex), api, handler, resource_path=path, **kw)

        def email_api(body: bytes) -> str:
            return "mergeTriggerEmail" if b"mergeTriggerRecordData" in body else "triggerEmail"

        members = "/lists/{list}/members"
        pet_members = "/lists/{list}/listExtensions/{pet}/members"
        supp_members = "/folders/{folder}/suppData/{table}/members"
        return [
            r("POST", "/auth/token", "login", self.login, auth=False),
            r("GET", members, "retrieveListMembers", self.retrieve_member),
            r("POST", members, "mergeListMembers", self.merge_list, writes=True, asyncable=True),
            r(
                "POST",
                members,
                "deleteListMembers",
                self.delete_members_batch,
                action="delete",
                writes=True,
                asyncable=True,
            ),
            r("DELETE", members, "deleteListMembers", self.delete_members_query, writes=True),
            r("DELETE", members + "/{riid}", "deleteListMembers", self.delete_member, writes=True),
            r("GET", "/lists/{list}/listExtensions", "getProfileExtensions", self.list_pets),
            r("POST", "/lists/{list}/listExtensions", "createPet", self.create_pet, writes=True),
            r("GET", pet_members, "retrievePetMembers", self.retrieve_pet_row),
            r("POST", pet_members, "mergePetMembers", self.merge_pet, writes=True, asyncable=True),
            r(
                "POST",
                pet_members,
                "deletePetMembers",
                self.delete_pet_batch,
                action="delete",
                writes=True,
                asyncable=True,
            ),
            r(
                "DELETE",
                pet_members + "/{riid}",
                "deletePetMembers",
                self.delete_pet_row,
                writes=True,
            ),
            r("POST", "/folders", "createFolder", self.create_folder, writes=True),
            r(
                "POST",
                "/folders/{folder}/suppData",
                "createSuppTable",
                self.create_supp,
                writes=True,
            ),
            r("POST", supp_members, "mergeSuppData", self.merge_supp, writes=True, asyncable=True),
            r("GET", supp_members, "retrieveSuppData", self.retrieve_supp_row),
            r("DELETE", supp_members, "deleteSuppData", self.delete_supp_row, writes=True),
            r(
                "DELETE",
                "/folders/{folder}/suppData/{table}/table",
                "dropSuppTable",
                self.drop_supp,
                writes=True,
            ),
            r("GET", "/suppData", "listSuppTables", self.list_supp),
            r(
                "POST",
                "/campaigns/{campaign}/email",
                email_api,
                self.email,
                writes=True,
                asyncable=True,
            ),
            r(
                "POST",
                "/events/{event}",
                "customEvent",
                self.custom_event,
                writes=True,
                asyncable=True,
            ),
            r("GET", "/requests/{ids}", "getAsyncResponse", self.poll_get, async_only=True),
            r("POST", "/requests", "getAsyncResponse", self.poll_post, async_only=True),
        ]

    def resolve(
        self, method: str, path: str, query: QueryParams
    ) -> tuple[_Route, dict, bool] | None:
        if path == "/rest/api/ratelimit" and method == "GET":
            route = _Route("GET", re.compile(""), "rateLimit", self.ratelimit)
            return route, {}, False
        m = _PREFIX.fullmatch(path)
        if not m:
            return None
        is_async, rest = m.group(1) == "asyncApi", m.group(2)
        for route in self.routes:
            if route.method != method or route.action != query.get("action"):
                continue
            pm = route.pattern.fullmatch(rest)
            if pm is None:
                continue
            if route.async_only != is_async and not (is_async and route.asyncable):
                continue
            return route, pm.groupdict(), is_async
        return None

    # --- one HTTP call -----------------------------------------------------------------------
    def run(self, route: _Route, call: _Call, is_async: bool) -> tuple[int, Any, str | None]:
        """Run a handler; returns (HTTP status, JSON payload, errorCode or None)."""
        try:
            payload = route.handler(call)
        except ApiError as exc:
            if is_async and exc.code not in ("INVALID_REQUEST_CONTENT", "RECIPIENT_LIMIT_EXCEEDED"):
                return 202, self.accept_async(call.api, "FAILURE", exc.body()), None
            return exc.status, exc.body(), exc.code
        if is_async:
            return 202, self.accept_async(call.api, "SUCCESS", payload), None
        return 200, payload, None


class _EmulatorApp(Starlette):
    """Starlette app that also remembers the server's raw `send`, so a fault can cut the TCP
    connection (uvicorn's send is a method of the cycle that owns the transport)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["responsys.raw_send"] = send
        await super().__call__(scope, receive, send)


async def _drop_connection(scope: Any) -> None:
    cycle = getattr(scope.get("responsys.raw_send"), "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        await asyncio.sleep(DROP_FALLBACK_SLEEP_SECONDS)
        return
    transport.close()
    # Let connection_lost run so the server stops trying to answer on this connection.
    for _ in range(5):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0.01)


def create_app(store: Store, settings: EmulatorSettings, faults: FaultInjector) -> Starlette:
    """The emulator as an ASGI app (serve it with uvicorn; EmulatorServer does)."""
    emulator = _Emulator(store, settings, faults)

    async def record(
        method: str, path: str, api: str, status: int, code: str | None, n: int
    ) -> None:
        await run_in_threadpool(store.record_api_call, method, path, api, status, code, n)

    async def handle(request: Request) -> Response:
        scope, method = request.scope, request.method
        path = scope["path"]
        found = emulator.resolve(method, path, request.query_params)
        if found is None:
            await record(method, path, "unknown", 404, "RESOURCE_NOT_FOUND", 0)
            body = error_body("RESOURCE_NOT_FOUND", f"No resource at {method} {path}")
            return JSONResponse(body, status_code=404)
        route, params, is_async = found
        declared = request.headers.get("content-length", "0")
        too_big = declared.isdigit() and int(declared) > settings.max_body_bytes
        chunks, size = [], 0
        if not too_big:
            async for chunk in request.stream():
                size += len(chunk)
                if size > settings.max_body_bytes:
                    too_big = True
                    break
                chunks.append(chunk)
        body = b"".join(chunks)
        api = route.api(body) if callable(route.api) else route.api
        if is_async and route.asyncable:
            api = _async_api_name(api)
        if too_big:
            await record(method, path, api, 0, "PAYLOAD_TOO_LARGE", 0)
            await _drop_connection(scope)
            return Response(status_code=413)

        async def fail(status: int, code: str, detail: str) -> Response:
            await record(method, path, api, status, code, 0)
            return JSONResponse(error_body(code, detail), status_code=status)

        taken = faults.take(api, route.writes)
        if "slow" in taken:
            await asyncio.sleep(taken["slow"].delay_seconds)
        if "server_error" in taken:
            await record(method, path, api, 503, "SERVICE_UNAVAILABLE", 0)
            html = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
            return Response(html, status_code=503, media_type="text/html")
        if "rate_limit" in taken:
            return await fail(401, "API_LIMIT_EXCEEDED", f"Request limit for {api} exceeded")
        if "capacity" in taken:
            faults.trip_capacity()
        if api != "login" and faults.capacity_exceeded():
            return await fail(
                401, "INTERNAL_CAPACITY_LIMIT_EXCEEDED", "Account internal capacity limit exceeded"
            )
        if route.auth and not emulator.tokens.valid(
            request.headers.get("authorization"), faults.token_generation
        ):
            return await fail(500, "UNEXPECTED_EXCEPTION", "Not a valid authentication token")
        if not emulator.limiter.allow(api):
            return await fail(401, "API_LIMIT_EXCEEDED", f"Request limit for {api} exceeded")
        merge_failed = taken.get("merge_failed")
        call = _Call(
            api=api,
            params=params,
            query=request.query_params,
            headers=request.headers,
            body=body,
            base_url=str(request.base_url).rstrip("/"),
            fail_indexes=merge_failed.record_indexes if merge_failed else frozenset(),
        )
        status, payload, code = await run_in_threadpool(
            emulator.run, route, call, is_async and route.asyncable
        )
        if "drop_after_send" in taken:
            await record(method, path, api, 0, "CONNECTION_DROPPED", call.records)
            await _drop_connection(scope)
            return Response(status_code=204)
        await record(method, path, api, status, code, call.records)
        return JSONResponse(payload, status_code=status)

    methods = ["GET", "POST", "DELETE", "PUT", "PATCH"]
    return _EmulatorApp(routes=[Route("/{path:path}", handle, methods=methods)])
