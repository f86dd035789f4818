"""Helpers for the emulator tests: account names, starting a seeded emulator, logging in, and
posting JSON bodies."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings

USER, PASSWORD = "api_user", "s3cret-Pass!"
LIST, FOLDER, CAMPAIGN, EVENT = "CONTACTS_LIST", "Sandbox", "WELCOME", "SCORE_CHANGED"
V13 = "/rest/api/v1.3"
ASYNC = "/rest/asyncApi/v1.3"
RULE = {
    "insertOnNoMatch": True,
    "updateOnMatch": "REPLACE_ALL",
    "matchColumnName1": "CUSTOMER_ID_",
    "matchColumnName2": None,
    "matchColumnName3": None,
    "matchOperator": "NONE",
    "optinValue": "I",
    "optoutValue": "O",
    "htmlValue": "H",
    "textValue": "T",
    "defaultPermissionStatus": "OPTIN",
    "rejectRecordIfChannelEmpty": "",
}


def _start(tmp_path: Path, **settings: object) -> EmulatorServer:
    server = EmulatorServer(
        tmp_path / "state",
        EmulatorSettings(
            username=USER, password=PASSWORD, async_processing_seconds=0.3, **settings
        ),
    )
    server.store.ensure_list(LIST, FOLDER)
    server.store.ensure_campaign(CAMPAIGN, LIST)
    server.store.ensure_custom_event(EVENT)
    server.faults.capacity_window_seconds = 0.5
    server.start()
    return server


def login(http: httpx.Client) -> str:
    resp = http.post(
        f"{V13}/auth/token",
        data={"user_name": USER, "password": PASSWORD, "auth_type": "password"},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["authToken"]


def post(http: httpx.Client, token: str, path: str, body: object, **kw: object) -> httpx.Response:
    return http.post(
        path,
        content=json.dumps(body),
        headers={"Authorization": token, "Content-Type": "application/json"},
        **kw,
    )


def merge(http: httpx.Client, token: str, rows: list[list], names=None, **rule) -> httpx.Response:
    names = names or ["CUSTOMER_ID_", "EMAIL_ADDRESS_", "FIRST_NAME"]
    body = {
        "recordData": {"fieldNames": names, "records": rows, "mapTemplateName": None},
        "mergeRule": {**RULE, **rule},
    }
    return post(http, token, f"{V13}/lists/{LIST}/members", body)


def assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"type", "title", "errorCode", "detail", "errorDetails"}
    assert body["errorCode"] == code and body["type"] == "" and body["errorDetails"] == []
    return body


def recipient_data(*ids: str, optional=None) -> list[dict]:
    return [
        {
            "recipient": {
                "customerId": i,
                "listName": {"folderName": FOLDER, "objectName": LIST},
                "emailFormat": "HTML_FORMAT",
            },
            "optionalData": optional or [],
        }
        for i in ids
    ]
