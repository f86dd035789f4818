"""EmulatorServer: state persists across a restart."""

from __future__ import annotations

import httpx

from tests.sandbox.api.support import (
    LIST,
    V13,
    _start,
    login,
    merge,
)


def test_state_persists_across_restart(tmp_path):
    server = _start(tmp_path)
    try:
        with httpx.Client(base_url=server.base_url, timeout=5.0) as http:
            riid = merge(http, login(http), [["c1", "a@example.com", "A"]]).json()
    finally:
        server.stop()
    again = _start(tmp_path)
    try:
        with httpx.Client(base_url=again.base_url, timeout=5.0) as http:
            token = login(http)
            got = http.get(
                f"{V13}/lists/{LIST}/members",
                params={"qa": "c", "id": "c1", "fs": "RIID_"},
                headers={"Authorization": token},
            )
            assert got.json()["recordData"]["records"] == [riid["recordData"]["records"][0]]
            new = merge(http, token, [["c2", "b@example.com", "B"]]).json()
        assert int(new["recordData"]["records"][0][0]) > int(riid["recordData"]["records"][0][0])
        assert again.store.counts()["list_members"] == 2
    finally:
        again.stop()
