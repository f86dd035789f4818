"""Fixtures for the emulator tests: a seeded emulator on 127.0.0.1, an HTTP client, a token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from responsys_assets.sandbox.api import EmulatorServer
from tests.sandbox.api.support import _start, login


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmulatorServer]:
    server = _start(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        yield client


@pytest.fixture
def token(http: httpx.Client) -> str:
    return login(http)
