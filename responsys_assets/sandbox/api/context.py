"""What a handler is given: the call (_Call: API name, path parameters, query, headers, body)
and the route that chose it (_Route)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers, QueryParams

from responsys_assets.sandbox.api.errors import _bad_content, _invalid


@dataclass
class _Call:
    api: str
    params: dict[str, str]
    query: QueryParams
    headers: Headers
    body: bytes
    base_url: str
    fail_indexes: frozenset[int] = frozenset()
    records: int = 0

    def json(self) -> Any:
        ctype = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise _bad_content("Content-Type must be application/json")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad_content(f"Request body is not valid JSON: {exc}") from None

    def one(self, name: str) -> str:
        values = self.query.getlist(name)
        if len(values) != 1 or not values[0]:
            raise _invalid(f"query parameter {name} is required once")
        return values[0]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    api: str | Callable[[bytes], str]
    handler: Callable[[_Call], Any]
    action: str | None = None
    writes: bool = False
    asyncable: bool = False
    async_only: bool = False
    auth: bool = True
    resource_path: str = ""


def _async_api_name(api: str) -> str:
    return "async" + api[0].upper() + api[1:]
