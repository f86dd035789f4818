"""Authentication: issued tokens, password login and token refresh (§1), and the ratelimit
endpoint that lists every API with its per-minute limit."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from responsys_assets.sandbox.api.base import _EndpointBase
from responsys_assets.sandbox.api.context import _async_api_name, _Call, _Route
from responsys_assets.sandbox.api.errors import ApiError, _bad_content, _bad_token, _invalid
from responsys_assets.sandbox.api.settings import DEFAULT_RATE_LIMIT


class _Tokens:
    """Issued auth tokens (in memory: a restart logs everybody out, as a new pod would)."""

    def __init__(self, lifetime_seconds: int) -> None:
        self._lifetime = lifetime_seconds
        self._tokens: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def issue(self, generation: int) -> str:
        token = secrets.token_urlsafe(48)
        with self._lock:
            now = time.monotonic()
            self._tokens = {t: v for t, v in self._tokens.items() if v[0] > now}
            self._tokens[token] = (now + self._lifetime, generation)
        return token

    def valid(self, token: str | None, generation: int) -> bool:
        if not token:
            return False
        with self._lock:
            entry = self._tokens.get(token)
        return entry is not None and entry[0] > time.monotonic() and entry[1] == generation


class AuthEndpoints(_EndpointBase):
    """POST /auth/token and GET /rest/api/ratelimit."""

    tokens: _Tokens
    routes: list[_Route]

    def login(self, call: _Call) -> Any:
        """Password login or token refresh (§1).

        Wrong credentials: 401 INVALID_USER_NAME_PASSWORD."""
        if {"user_name", "password", "auth_type"} & set(call.query.keys()):
            raise _invalid("Credentials must be sent in the form body, never in the URL")
        ctype = call.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise _bad_content("Content-Type must be application/x-www-form-urlencoded")
        try:
            form = parse_qs(call.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise _bad_content("form body is not UTF-8") from None
        auth_type = (form.get("auth_type") or [""])[0]
        if auth_type == "password":
            user = (form.get("user_name") or [""])[0]
            password = (form.get("password") or [""])[0]
            if not user or not password:
                raise _invalid("user_name and password are required")
            ok_user = hmac.compare_digest(user.encode(), self.settings.username.encode())
            ok_pass = hmac.compare_digest(password.encode(), self.settings.password.encode())
            if not (ok_user and ok_pass):
                raise ApiError(401, "INVALID_USER_NAME_PASSWORD", "Invalid user name or password")
        elif auth_type == "token":
            if not self.tokens.valid(
                call.headers.get("authorization"), self.faults.token_generation
            ):
                raise _bad_token()
        else:
            raise _invalid("auth_type must be password or token")
        token = self.tokens.issue(self.faults.token_generation)
        return {"authToken": token, "issuedAt": int(time.time() * 1000), "endPoint": call.base_url}

    def ratelimit(self, call: _Call) -> Any:
        out = []
        for route in self.routes:
            if callable(route.api):
                names = ["triggerEmail", "mergeTriggerEmail"]
            else:
                names = [route.api]
            prefix = "/rest/asyncApi/v1.3" if route.async_only else "/rest/api/v1.3"
            for name in dict.fromkeys(names):
                out.append(self._limit_entry(name, prefix + route.resource_path, route.method))
                if route.asyncable:
                    path = "/rest/asyncApi/v1.3" + route.resource_path
                    out.append(self._limit_entry(_async_api_name(name), path, route.method))
        unique = {(e["api"], e["resource_path"], e["verb"]): e for e in out}
        return list(unique.values())

    def _limit_entry(self, api: str, path: str, verb: str) -> dict[str, Any]:
        limit = self.settings.rate_limits.get(api, DEFAULT_RATE_LIMIT)
        return {
            "limit": limit,
            "api": api,
            "resource_path": path,
            "verb": verb,
            "description": f"{api}: at most {limit} calls per minute",
        }

    # --- lookups ----------------------------------------------------------------------------
