"""Responsys error answers: ApiError (HTTP status plus documented body), error_body and the small
constructors the handlers raise."""

from __future__ import annotations

from typing import Any

_TITLES = {
    "INVALID_PARAMETER": "Invalid request parameters",
    "INVALID_REQUEST_CONTENT": "Invalid request content",
    "RECIPIENT_LIMIT_EXCEEDED": "Recipient limit exceeded",
    "API_LIMIT_EXCEEDED": "API limit exceeded",
    "INTERNAL_CAPACITY_LIMIT_EXCEEDED": "Internal capacity limit exceeded",
    "UNEXPECTED_EXCEPTION": "Unexpected exception",
    "INVALID_USER_NAME_PASSWORD": "Invalid user name or password",
    "LIST_NOT_FOUND": "List not found",
    "TABLE_NOT_FOUND": "Table not found",
    "FOLDER_NOT_FOUND": "Folder not found",
    "CAMPAIGN_NOT_FOUND": "Campaign not found",
    "EVENT_NOT_FOUND": "Event not found",
    "RECIPIENT_NOT_FOUND": "Recipient not found",
    "RESOURCE_NOT_FOUND": "Resource not found",
    "FOLDER_ALREADY_EXISTS": "Folder already exists",
    "TABLE_ALREADY_EXISTS": "Table already exists",
    "PROFILE_EXTENSION_ALREADY_EXISTS": "Profile extension already exists",
    "SUPP_TABLE_LIMIT_EXCEEDED": "Supplemental table limit exceeded",
}


class ApiError(Exception):
    """A Responsys error answer: HTTP status plus the documented error body."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.detail)


def error_body(code: str, detail: str) -> dict[str, Any]:
    return {
        "type": "",
        "title": _TITLES.get(code, code.replace("_", " ").capitalize()),
        "errorCode": code,
        "detail": detail,
        "errorDetails": [],
    }


def _invalid(detail: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER", detail)


def _bad_content(detail: str) -> ApiError:
    return ApiError(400, "INVALID_REQUEST_CONTENT", detail)


def _bad_token() -> ApiError:
    return ApiError(500, "UNEXPECTED_EXCEPTION", "Not a valid authentication token")


def _row_failure(prefix: str, index: int, code: str, message: str) -> str:
    return f"{prefix}: Record {index} = {code}: {message}"
