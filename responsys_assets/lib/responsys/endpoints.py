"""Where credentials and tokens may go: the configured login host and the endPoint that login
returns are both checked (https, a Responsys host; http only on loopback) before use."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from responsys_assets.lib.responsys.errors import InsecureEndpoint

RESPONSYS_HOST_SUFFIXES = (
    ".responsys.net",
    ".rsys8.net",
    ".rsys9.net",
    ".responsys.ocs.oraclecloud.com",
)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_url(value: str, *, what: str) -> tuple[str, str, str]:
    """Return (scheme, host, url without trailing slash); refuse credentials, query, fragment."""
    text = value.strip()
    if not text:
        raise InsecureEndpoint(f"{what} is empty")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.username is not None or parts.password is not None:
        raise InsecureEndpoint(f"{what} must not contain a user name or password")
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("https", "http") or not host:
        raise InsecureEndpoint(f"{what} {value!r} is not an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise InsecureEndpoint(f"{what} {value!r} must not have a query or fragment")
    url = f"{scheme}://{parts.netloc}{parts.path}".rstrip("/")
    return scheme, host, url


def normalise_endpoint(value: str) -> str:
    """Turn a configured login host into a base URL: https by default, http only on loopback."""
    scheme, host, url = _split_url(value, what="Responsys endpoint")
    if scheme == "http" and not _is_loopback(host):
        raise InsecureEndpoint(
            f"Responsys endpoint {url!r} uses plain http; use https (http is only for 127.0.0.1)"
        )
    return url


def validate_api_endpoint(value: str, login_endpoint: str) -> str:
    """Check the login response's endPoint before any token is sent to it.

    https and a Responsys host are required; a loopback host (and http) only when the login
    itself went to loopback, i.e. the sandbox.
    """
    login_host = urlsplit(normalise_endpoint(login_endpoint)).hostname
    on_loopback = _is_loopback(login_host)
    scheme, host, url = _split_url(value or "", what="endPoint from the login response")
    host_l = host.lower()
    responsys_host = any(host_l.endswith(s) for s in RESPONSYS_HOST_SUFFIXES)
    if not responsys_host and not (on_loopback and _is_loopback(host)):
        raise InsecureEndpoint(
            f"login returned endPoint {url!r}, which is not a Responsys host; refusing to send "
            "the token there"
        )
    if scheme == "http" and not (on_loopback and _is_loopback(host)):
        raise InsecureEndpoint(f"login returned endPoint {url!r} with plain http; https needed")
    return url
