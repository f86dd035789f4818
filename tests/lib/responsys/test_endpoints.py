"""Endpoint normalisation and the check of the endPoint that login returns (no network)."""

from __future__ import annotations

import pytest

from responsys_assets.lib.responsys import (
    InsecureEndpoint,
    normalise_endpoint,
    validate_api_endpoint,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("login2.responsys.net", "https://login2.responsys.net"),
        ("https://login2.responsys.net/", "https://login2.responsys.net"),
        (" https://login.rsys9.net ", "https://login.rsys9.net"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.9.9.9:1/", "http://127.9.9.9:1"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_normalise_endpoint(value, expected):
    assert normalise_endpoint(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "http://login2.responsys.net",
        "http://10.0.0.1:8080",
        "ftp://login2.responsys.net",
        "https://user:pw@login2.responsys.net",
        "https://login2.responsys.net/?x=1",
        "",
    ],
)
def test_normalise_endpoint_refuses(value):
    with pytest.raises(InsecureEndpoint) as info:
        normalise_endpoint(value)
    assert "pw" not in str(info.value)


def test_insecure_endpoint_message_names_the_url():
    with pytest.raises(InsecureEndpoint, match="http://login2.responsys.net"):
        normalise_endpoint("http://login2.responsys.net")


@pytest.mark.parametrize(
    ("value", "login", "expected"),
    [
        ("api2-004.responsys.net", "login2.responsys.net", "https://api2-004.responsys.net"),
        ("https://api5.responsys.net/", "login5.responsys.net", "https://api5.responsys.net"),
        ("https://api.rsys8.net", "login.rsys8.net", "https://api.rsys8.net"),
        (
            "https://acme-api.responsys.ocs.oraclecloud.com",
            "acme-api.responsys.ocs.oraclecloud.com",
            "https://acme-api.responsys.ocs.oraclecloud.com",
        ),
        ("http://127.0.0.1:5555", "http://127.0.0.1:5555", "http://127.0.0.1:5555"),
        ("https://api2.responsys.net", "http://127.0.0.1:5555", "https://api2.responsys.net"),
    ],
)
def test_validate_api_endpoint(value, login, expected):
    assert validate_api_endpoint(value, login) == expected


@pytest.mark.parametrize(
    ("value", "login"),
    [
        ("https://evil.example.com", "login2.responsys.net"),
        ("https://evilresponsys.net", "login2.responsys.net"),
        ("https://responsys.net.evil.com", "login2.responsys.net"),
        ("http://api2.responsys.net", "login2.responsys.net"),
        ("http://127.0.0.1:5555", "login2.responsys.net"),
        ("https://127.0.0.1:5555", "login2.responsys.net"),
        ("http://api2.responsys.net", "http://127.0.0.1:5555"),
        ("https://evil.example.com", "http://127.0.0.1:5555"),
        ("", "login2.responsys.net"),
    ],
)
def test_validate_api_endpoint_refuses(value, login):
    with pytest.raises(InsecureEndpoint):
        validate_api_endpoint(value, login)
