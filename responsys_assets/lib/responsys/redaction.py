"""Member email addresses are personal data: they are masked in httpx's log records and in
error texts that came from the server."""

from __future__ import annotations

import logging
import re

_EMAIL_RE = re.compile(r"[^\s@\"',;:<>()\[\]]+@[^\s@\"',;:<>()\[\]]+\.[A-Za-z]{2,}")
_ENCODED_EMAIL_RE = re.compile(r"[^\s/?&=]+%40[^\s&\"]+")


class _RedactEmails(logging.Filter):
    """httpx logs every request URL; Responsys puts member ids (emails, for qa=e) in the query
    string, so emails are masked in those records before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message or "%40" in message:
            message = _EMAIL_RE.sub("[email]", _ENCODED_EMAIL_RE.sub("[email]", message))
            record.msg, record.args = message, ()
        return True


_EMAIL_LOG_FILTER = _RedactEmails()
