"""Authentication: password login, token refresh, token checks and the ratelimit API."""

from __future__ import annotations

import time

from tests.sandbox.api.support import (
    LIST,
    PASSWORD,
    USER,
    V13,
    assert_error,
)


def test_login_returns_token_issued_at_and_own_endpoint(server, http):
    resp = http.post(
        f"{V13}/auth/token",
        data={"user_name": USER, "password": PASSWORD, "auth_type": "password"},
    )
    body = resp.json()
    assert resp.status_code == 200
    assert body["endPoint"] == server.base_url
    assert abs(body["issuedAt"] - time.time() * 1000) < 60_000
    assert len(body["authToken"]) > 20


def test_login_wrong_password_is_401(http):
    resp = http.post(
        f"{V13}/auth/token", data={"user_name": USER, "password": "nope", "auth_type": "password"}
    )
    assert_error(resp, 401, "INVALID_USER_NAME_PASSWORD")
    assert PASSWORD not in resp.text


def test_login_credentials_in_query_string_are_refused(http):
    resp = http.post(
        f"{V13}/auth/token",
        params={"user_name": USER, "password": PASSWORD, "auth_type": "password"},
    )
    assert_error(resp, 400, "INVALID_PARAMETER")


def test_bearer_prefix_and_missing_token_are_not_valid(http, token):
    for header in (f"Bearer {token}", ""):
        resp = http.get(f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": header})
        body = assert_error(resp, 500, "UNEXPECTED_EXCEPTION")
        assert body["detail"] == "Not a valid authentication token"
    ok = http.get(f"{V13}/lists/{LIST}/listExtensions", headers={"Authorization": token})
    assert ok.status_code == 200 and ok.json() == []


def test_refresh_gives_a_new_working_token(http, token):
    resp = http.post(
        f"{V13}/auth/token", data={"auth_type": "token"}, headers={"Authorization": token}
    )
    assert resp.status_code == 200
    fresh = resp.json()["authToken"]
    assert fresh != token
    assert http.get("/rest/api/ratelimit", headers={"Authorization": fresh}).status_code == 200
    bad = http.post(
        f"{V13}/auth/token", data={"auth_type": "token"}, headers={"Authorization": "Bearer x"}
    )
    assert_error(bad, 500, "UNEXPECTED_EXCEPTION")


def test_ratelimit_lists_apis_and_v13_path_is_404(http, token):
    resp = http.get("/rest/api/ratelimit", headers={"Authorization": token})
    limits = {e["api"]: e for e in resp.json()}
    assert limits["login"]["limit"] == 10
    assert limits["mergeListMembers"]["resource_path"] == f"{V13}/lists/{{list}}/members"
    assert set(limits["mergeListMembers"]) == {
        "limit",
        "api",
        "resource_path",
        "verb",
        "description",
    }
    assert "asyncMergeTriggerEmail" in limits
    assert_error(
        http.get(f"{V13}/ratelimit", headers={"Authorization": token}), 404, "RESOURCE_NOT_FOUND"
    )
