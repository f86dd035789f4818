"""Which file names we accept from a server or write to one: plain, harmless base names.

Remote names are untrusted: a name that reaches the disk or a remote path goes through
`safe_local_name` first, wherever it comes from (a listing, a download, an upload).
"""

import re

MAX_NAME_LENGTH = 200

_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")


class UnsafeFileName(ValueError):
    """A remote file name that cannot be used as a local file name."""


def safe_local_name(remote_name: str) -> str:
    """Return `remote_name` if it is a plain, harmless base name; raise UnsafeFileName if not."""
    reason = _unsafe_reason(remote_name)
    if reason:
        raise UnsafeFileName(f"Refusing remote file name {remote_name!r}: {reason}.")
    return remote_name


def _unsafe_reason(name: object) -> str | None:
    if not isinstance(name, str):
        return "it is not a string"
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"it is {len(name)} characters long (the limit is {MAX_NAME_LENGTH})"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains a control character"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if name in (".", ".."):
        return "it is a relative folder reference"
    if name.startswith("."):
        return "it starts with '.' (hidden files are not taken)"
    if not _SAFE_NAME.fullmatch(name):
        return "only letters, digits, '.', '_' and '-' are allowed"
    return None
