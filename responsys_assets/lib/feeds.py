"""Responsys Connect event files: the file-name grammar, the feed tokens and each feed's columns.

Facts come from /work/shared/reference/responsys-api.md section 5. Layouts Oracle does not publish
in full are lenient on purpose: only the columns every event file carries are required, the rest
are optional, and columns we do not know land in `attributes` instead of failing the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

CHANNEL_PREFIXES: tuple[str, ...] = ("SMS", "MMS", "PUSH", "WEBPUSH")
"""Channels that prefix the feed token (`1234_SMS_CLICK_...`); no prefix means EMAIL."""

EMAIL_EVENT_FEEDS: tuple[str, ...] = (
    "SENT",
    "OPEN",
    "CLICK",
    "BOUNCE",
    "OPT_IN",
    "OPT_OUT",
    "CONVERT",
    "SKIPPED",
    "FAIL",
    "COMPLAINT",
    "PROGRAM",
)
CHANNEL_EVENT_FEEDS: tuple[str, ...] = (
    "SENT",
    "OPEN",
    "CLICK",
    "BOUNCE",
    "OPT_IN",
    "OPT_OUT",
    "CONVERT",
    "SKIPPED",
    "FAIL",
)
"""Feeds accepted with a channel prefix. Exact tokens are unconfirmed, so we accept a superset."""

LAUNCH_STATE = "LAUNCH_STATE"
CONTACTS = "CONTACTS"
"""Our name for the profile-list export feed; its token in file names is configurable."""

COMMON_COLUMNS: tuple[str, ...] = (
    "EVENT_TYPE_ID",
    "ACCOUNT_ID",
    "LIST_ID",
    "RIID",
    "CUSTOMER_ID",
    "EVENT_CAPTURED_DT",
    "EVENT_STORED_DT",
    "CAMPAIGN_ID",
    "LAUNCH_ID",
)

Target = Literal["events", "launch_states", "contacts"]

_EXTENSIONS = r"(?:(?:txt|csv)(?:\.(?:gpg|pgp|asc))?|gpg|pgp|asc)"
_NAME = re.compile(
    r"^(?P<account>[A-Za-z0-9]+)_(?P<token>[A-Za-z][A-Za-z0-9_]*?)"
    r"_(?P<date>\d{8})_(?P<time>\d{6})\.(?P<ext>" + _EXTENSIONS + r")$",
    re.IGNORECASE,
)


class UnknownFileName(ValueError):
    """The name does not follow `<accountID>_<FEED>_<YYYYMMDD>_<HHMMSS>.<ext>` at all."""


@dataclass(frozen=True)
class FeedFile:
    """What a Connect file name says; feed None means a token we do not know."""

    name: str
    account_id: str
    feed: str | None
    channel: str
    stamp: datetime
    encrypted_by_name: bool


@dataclass(frozen=True)
class FeedLayout:
    """The columns of one feed. `required` columns must be in the header and filled in every row."""

    feed: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    target: Target

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


def known_feeds(contacts_token: str = CONTACTS) -> frozenset[str]:
    """Every feed token we can parse, with channel variants."""
    feeds = set(EMAIL_EVENT_FEEDS) | {LAUNCH_STATE, contacts_token.upper()}
    feeds |= {f"{ch}_{feed}" for ch in CHANNEL_PREFIXES for feed in CHANNEL_EVENT_FEEDS}
    return frozenset(feeds)


def parse_file_name(name: str, *, contacts_token: str = CONTACTS) -> FeedFile:
    """Split a Connect file name; an unknown feed token gives feed=None so callers can skip it.

    `contacts_token` is the token the profile-list export job writes (config
    `ingest.contacts_token`); such files are reported as feed "CONTACTS".
    """
    match = _NAME.match(name)
    if match is None:
        raise UnknownFileName(
            f"{name!r} is not a Responsys Connect file name like "
            "'1234_CLICK_20260103_130532.txt' (<accountID>_<FEED>_<YYYYMMDD>_<HHMMSS>.<ext>, "
            "ext txt/csv, optionally .gpg/.pgp/.asc)"
        )
    try:
        stamp = datetime.strptime(match["date"] + match["time"], "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise UnknownFileName(f"{name!r}: the date/time stamp is not a real time ({exc})") from exc
    token = match["token"].upper()
    channel = "EMAIL"
    for prefix in CHANNEL_PREFIXES:
        if token.startswith(prefix + "_"):
            channel = prefix
            break
    if token == contacts_token.upper():
        feed: str | None = CONTACTS
    else:
        feed = token if token in known_feeds(contacts_token) else None
    ext = match["ext"].lower()
    return FeedFile(
        name=name,
        account_id=match["account"],
        feed=feed,
        channel=channel,
        stamp=stamp,
        encrypted_by_name=ext.endswith(("gpg", "pgp", "asc")),
    )


def _event_layout(
    feed: str, extras: tuple[str, ...], *, also_required: tuple[str, ...] = ()
) -> FeedLayout:
    required = ("RIID", "EVENT_CAPTURED_DT") + also_required
    optional = tuple(c for c in COMMON_COLUMNS if c not in required) + extras
    return FeedLayout(feed=feed, required=required, optional=optional, target="events")


_SENT_EXTRAS = (
    "EMAIL",
    "EMAIL_ISP",
    "EMAIL_FORMAT",
    "OFFER_SIGNATURE_ID",
    "DYNAMIC_CONTENT_SIGNATURE_ID",
    "MESSAGE_SIZE",
    "SEGMENT_INFO",
    "CONTACT_INFO",
)
_EVENT_EXTRAS: dict[str, tuple[str, ...]] = {
    "SENT": _SENT_EXTRAS,
    "FAIL": _SENT_EXTRAS,
    "SKIPPED": _SENT_EXTRAS,
    "OPEN": ("EMAIL_FORMAT",),
    "CLICK": ("EMAIL_FORMAT", "OFFER_NAME", "OFFER_NUMBER", "OFFER_CATEGORY", "OFFER_URL"),
    "BOUNCE": ("EMAIL", "EMAIL_FORMAT", "BOUNCE_TYPE", "REASON", "REASON_CODE", "SUBJECT"),
    "OPT_IN": ("EMAIL", "EMAIL_FORMAT", "SOURCE", "REASON"),
    "OPT_OUT": ("EMAIL", "EMAIL_FORMAT", "SOURCE", "REASON"),
    "CONVERT": ("EMAIL_FORMAT", "ORDER_ID", "ORDER_TOTAL", "ITEM_COUNT"),
    "COMPLAINT": ("COMPLAINER_EMAIL", "SPAM_TYPE", "COMPLAINT_DT"),
    # PROGRAM has no CAMPAIGN_ID/LAUNCH_ID; they stay optional so the layout is still lenient.
    "PROGRAM": ("PROGRAM_NAME", "ENACTMENT_ID", "PROGRAM_VERSION", "DESCRIPTION"),
}


def _build_layouts() -> dict[str, FeedLayout]:
    layouts = {feed: _event_layout(feed, _EVENT_EXTRAS[feed]) for feed in EMAIL_EVENT_FEEDS}
    layouts["PROGRAM"] = _event_layout(
        "PROGRAM", _EVENT_EXTRAS["PROGRAM"], also_required=("PROGRAM_ID",)
    )
    for channel in CHANNEL_PREFIXES:
        for feed in CHANNEL_EVENT_FEEDS:
            token = f"{channel}_{feed}"
            layouts[token] = _event_layout(token, ("MOBILE_NUMBER", "EMAIL"))
    layouts[LAUNCH_STATE] = FeedLayout(
        feed=LAUNCH_STATE,
        required=("CAMPAIGN_ID", "LAUNCH_ID"),
        optional=(
            "ACCOUNT_ID",
            "LIST_ID",
            "EVENT_CAPTURED_DT",
            "EVENT_STORED_DT",
            "EXTERNAL_CAMPAIGN_ID",
            "SF_CAMPAIGN_ID",
            "CAMPAIGN_NAME",
            "LAUNCH_NAME",
            "LAUNCH_STATUS",
            "LAUNCH_TYPE",
            "LAUNCH_CHARSET",
            "PURPOSE",
            "SUBJECT",
            "DESCRIPTION",
            "PRODUCT_CATEGORY",
            "PRODUCT_TYPE",
            "MARKETING_STRATEGY",
            "MARKETING_PROGRAM",
            "LAUNCH_ERROR_CODE",
            "LAUNCH_STARTED_DT",
            "LAUNCH_COMPLETED_DT",
        ),
        target="launch_states",
    )
    # A profile-list export (not a CED feed): the profile list's system column names.
    layouts[CONTACTS] = FeedLayout(
        feed=CONTACTS,
        required=("RIID_", "EMAIL_PERMISSION_STATUS_"),
        optional=("CUSTOMER_ID_", "EMAIL_ADDRESS_", "MODIFIED_DATE_"),
        target="contacts",
    )
    return layouts


LAYOUTS: dict[str, FeedLayout] = _build_layouts()
"""Feed token -> layout. Header names are matched case-insensitively; extra columns are allowed."""
