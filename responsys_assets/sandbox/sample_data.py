"""Realistic Responsys Connect event files for the sandbox, the tests and the benchmarks.

`generate_event_files` simulates N contacts over some days of daily launches: an engaged share
that opens and clicks often, a lapsing share that engaged early and stopped, a casual share,
never-engaged contacts, hard and soft bounces, opt-outs (a few opt back in), complaints and
conversions after clicks. Every file is one feed for one run window, named like Connect names
them, and written atomically. The same seed and `end` give byte-identical files.

`generate_click_file` writes one big CLICK file fast (vectorised, in chunks) for benchmarks.
"""

from __future__ import annotations

import csv
import io
import os
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from responsys_assets.lib.feeds import COMMON_COLUMNS, CONTACTS, LAUNCH_STATE, LAYOUTS

DEFAULT_FEEDS: tuple[str, ...] = (
    "SENT",
    "OPEN",
    "CLICK",
    "BOUNCE",
    "OPT_IN",
    "OPT_OUT",
    "CONVERT",
    "COMPLAINT",
    "SKIPPED",
    "FAIL",
    LAUNCH_STATE,
)
DATE_FORMAT = "%d-%b-%Y %H:%M:%S"
LIST_ID = "4200"

# Amperity's table (secondary source); the ids for SKIPPED/FAIL/COMPLAINT/PROGRAM are guesses.
EVENT_TYPE_IDS = {
    "SENT": "1",
    "BOUNCE": "2",
    "FAIL": "3",
    "OPEN": "4",
    "CLICK": "5",
    "SKIPPED": "6",
    "OPT_OUT": "7",
    "COMPLAINT": "8",
    "PROGRAM": "12",
    "CONVERT": "19",
    "OPT_IN": "21",
}

_FIRST = "anna ben carla david emma felix greta hugo ida jonas klara leon mia noah olga".split()
_LAST = (
    "meyer schmidt novak rossi garcia smith jensen kowalski dubois silva berg costa weber".split()
)
_OFFERS = [
    ("Spring sale", "SALE", "https://shop.example.com/sale?utm_source=responsys"),
    ("New arrivals", "NEW", "https://shop.example.com/new?utm_source=responsys"),
    ("Running shoes", "SHOES", "https://shop.example.com/c/shoes?utm_source=responsys"),
    ("Rain jackets, all sizes", "OUTDOOR", "https://shop.example.com/c/jackets?ref=mail"),
    ("Your account", "SERVICE", "https://shop.example.com/account"),
]
_CAMPAIGNS = ["Weekly_Newsletter", "Spring_Promo", "Loyalty_Rewards", "Product_Launch"]
_SEGMENTS = (("engaged", 0.2), ("lapsing", 0.25), ("casual", 0.25), ("never", 0.3))


def _stamp(moment: datetime) -> str:
    return moment.strftime(DATE_FORMAT)


def _header(feed: str) -> list[str]:
    layout = LAYOUTS[feed]
    common = [c for c in layout.columns if c in _COMMON_ORDER]
    common.sort(key=_COMMON_ORDER.index)
    return common + [c for c in layout.columns if c not in _COMMON_ORDER]


_COMMON_ORDER = [
    *COMMON_COLUMNS,
    "PROGRAM_ID",
    "RIID_",
    "CUSTOMER_ID_",
    "EMAIL_ADDRESS_",
]


@dataclass
class _Contact:
    riid: int
    customer_id: str
    email: str
    segment: str
    hard_bouncer: bool
    opted_in: bool = True
    bounced: bool = False
    complained: bool = False
    fate: str = ""  # "complain" or "return" (opts out, then back in): a few, so each feed shows
    modified: datetime | None = None


def _write_atomic(path: Path, content: bytes) -> None:
    temp = path.with_name(f".{path.name}.part")
    temp.write_bytes(content)
    os.replace(temp, path)


def generate_event_files(
    out_dir: Path,
    *,
    contacts: int = 2000,
    days: int = 14,
    runs_per_day: int = 1,
    end: datetime | None = None,
    seed: int = 7,
    account_id: str = "10001",
    feeds: tuple[str, ...] = DEFAULT_FEEDS,
    encrypt: Callable[[bytes], bytes] | None = None,
    encrypt_feeds: tuple[str, ...] = ("CLICK", "OPEN"),
) -> list[Path]:
    """Write Connect files for `days` days ending at `end` (naive UTC; default: this hour).

    One file per feed and run window (`runs_per_day` windows a day), stamped at the window's
    end; events after `end` are not written. Feeds named in `encrypt_feeds` are passed through
    `encrypt` and named `.txt.gpg`. Also supports PROGRAM, CONTACTS and SMS_*/PUSH_* feeds.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    if end is None:
        end = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    window = timedelta(days=1) / runs_per_day

    people: list[_Contact] = []
    for i in range(contacts):
        roll, segment = rng.random(), "never"
        for name, share in _SEGMENTS:
            if roll < share:
                segment = name
                break
            roll -= share
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        riid = 1_000_001 + i * 7
        people.append(
            _Contact(
                riid=riid,
                customer_id=f"C{riid:09d}",
                email=f"{first}.{last}{i}@example.com",
                segment=segment,
                hard_bouncer=rng.random() < 0.02,
            )
        )

    never = [p for p in people if p.segment == "never" and not p.hard_bouncer]
    casual = [p for p in people if p.segment == "casual" and not p.hard_bouncer]
    for person in rng.sample(never, min(len(never), max(1, contacts // 500))):
        person.fate = "complain"
    for person in rng.sample(casual, min(len(casual), max(1, contacts // 300))):
        person.fate = "return"

    rows: dict[str, list[tuple[datetime, dict[str, str]]]] = defaultdict(list)

    def event(feed: str, at: datetime, person: _Contact, **extra: str) -> None:
        row = {
            "EVENT_TYPE_ID": EVENT_TYPE_IDS[feed],
            "ACCOUNT_ID": account_id,
            "LIST_ID": LIST_ID,
            "RIID": str(person.riid),
            "CUSTOMER_ID": person.customer_id,
            "EVENT_CAPTURED_DT": _stamp(at),
            "EVENT_STORED_DT": _stamp(at + timedelta(seconds=rng.randint(1, 90))),
            **extra,
        }
        rows[feed].append((at, row))

    def opt_out(person: _Contact, sent_at: datetime, ids: dict[str, str]) -> None:
        out_at = sent_at + timedelta(hours=rng.randint(1, 48))
        person.opted_in, person.modified = False, out_at
        unsubscribed = {"SOURCE": "LINK", "REASON": "unsubscribe link"}
        event("OPT_OUT", out_at, person, **ids, EMAIL=person.email, **unsubscribed)

    def complain(person: _Contact, sent_at: datetime, ids: dict[str, str]) -> None:
        at = sent_at + timedelta(hours=rng.randint(1, 24))
        person.complained, person.modified = True, at
        spam = {"SPAM_TYPE": "abuse", "COMPLAINT_DT": _stamp(at)}
        event("COMPLAINT", at, person, **ids, COMPLAINER_EMAIL=person.email, **spam)

    launch_count = days * runs_per_day
    for n in range(launch_count):
        launched = start + window * n + timedelta(minutes=rng.randint(5, 50))
        campaign = n % len(_CAMPAIGNS)
        ids = {"CAMPAIGN_ID": str(3000 + campaign), "LAUNCH_ID": str(70000 + n)}
        progress = n / max(launch_count - 1, 1)
        rows[LAUNCH_STATE].append(
            (
                launched,
                {
                    "ACCOUNT_ID": account_id,
                    "LIST_ID": LIST_ID,
                    "EVENT_CAPTURED_DT": _stamp(launched),
                    "EVENT_STORED_DT": _stamp(launched + timedelta(seconds=30)),
                    **ids,
                    "CAMPAIGN_NAME": _CAMPAIGNS[campaign],
                    "LAUNCH_NAME": f"{_CAMPAIGNS[campaign]}_{launched:%Y%m%d}",
                    "LAUNCH_STATUS": "C",
                    "LAUNCH_TYPE": "S",
                    "LAUNCH_CHARSET": "UTF-8",
                    "SUBJECT": f"{_CAMPAIGNS[campaign].replace('_', ' ')}: news for you",
                    "LAUNCH_STARTED_DT": _stamp(launched),
                    "LAUNCH_COMPLETED_DT": _stamp(launched + timedelta(minutes=12)),
                },
            )
        )
        for person in people:
            if person.bounced or person.complained:
                continue
            sent_at = launched + timedelta(seconds=rng.randint(0, 600))
            if not person.opted_in:
                event("SKIPPED", sent_at, person, EMAIL=person.email, EMAIL_FORMAT="H")
                if person.fate == "return" or rng.random() < 0.01:
                    person.opted_in, person.modified = True, sent_at + timedelta(days=1)
                    event("OPT_IN", person.modified, person, EMAIL=person.email, SOURCE="FORM")
                continue
            if rng.random() < 0.001:
                event("FAIL", sent_at, person, EMAIL=person.email, EMAIL_FORMAT="H")
                continue
            sent = {"EMAIL": person.email, "EMAIL_ISP": "example", "EMAIL_FORMAT": "H"}
            event("SENT", sent_at, person, **ids, **sent, MESSAGE_SIZE="48213")
            bounce_at = sent_at + timedelta(seconds=rng.randint(5, 300))
            if person.hard_bouncer:
                person.bounced, person.modified = True, bounce_at
                reason = {"REASON": "USER_NOT_FOUND", "REASON_CODE": "550 5.1.1 unknown user"}
                event(
                    "BOUNCE",
                    bounce_at,
                    person,
                    **ids,
                    EMAIL=person.email,
                    BOUNCE_TYPE="H",
                    **reason,
                )
                continue
            if rng.random() < 0.03:
                reason = {"REASON": "MAILBOX_FULL", "REASON_CODE": "452 4.2.2 mailbox full"}
                event(
                    "BOUNCE",
                    bounce_at,
                    person,
                    **ids,
                    EMAIL=person.email,
                    BOUNCE_TYPE="S",
                    **reason,
                )
                continue
            if person.fate == "return" and n == 0:
                opt_out(person, sent_at, ids)
                continue
            if person.fate == "complain" and n == 1:
                complain(person, sent_at, ids)
                continue
            open_rate = {"engaged": 0.6, "casual": 0.2, "never": 0.0}.get(person.segment)
            if open_rate is None:  # lapsing: engaged during the first third, then silent
                open_rate = 0.5 if progress < 0.34 else 0.0
            if rng.random() < open_rate:
                opened = sent_at + timedelta(minutes=rng.randint(5, 36 * 60))
                event("OPEN", opened, person, **ids, EMAIL_FORMAT="H")
                click_rate = {"engaged": 0.5, "casual": 0.15}.get(person.segment, 0.3)
                if rng.random() < click_rate:
                    clicked = opened + timedelta(seconds=rng.randint(10, 900))
                    offer = rng.randrange(len(_OFFERS))
                    name, category, url = _OFFERS[offer]
                    event(
                        "CLICK",
                        clicked,
                        person,
                        **ids,
                        EMAIL_FORMAT="H",
                        OFFER_NAME=name,
                        OFFER_NUMBER=str(offer + 1),
                        OFFER_CATEGORY=category,
                        OFFER_URL=url,
                    )
                    if rng.random() < 0.15:
                        converted = clicked + timedelta(minutes=rng.randint(2, 240))
                        total = f"{rng.randint(1500, 25000) / 100:.2f}"
                        event(
                            "CONVERT",
                            converted,
                            person,
                            **ids,
                            EMAIL_FORMAT="H",
                            ORDER_ID=f"O{person.riid}{n}",
                            ORDER_TOTAL=total,
                            ITEM_COUNT="1",
                        )
                    if person.segment == "engaged" and n == 0:
                        event(
                            "PROGRAM",
                            clicked,
                            person,
                            PROGRAM_ID="501",
                            ENACTMENT_ID=str(person.riid),
                            PROGRAM_NAME="Welcome_Journey",
                        )
            elif person.segment in ("never", "casual") and rng.random() < 0.004:
                opt_out(person, sent_at, ids)
            elif person.segment == "never" and rng.random() < 0.001:
                complain(person, sent_at, ids)

    for feed in feeds:  # other channels: a plain copy of the email behaviour
        channel, _, base = feed.partition("_")
        if channel in ("SMS", "MMS", "PUSH", "WEBPUSH") and base in rows:
            for at, row in rows[base]:
                mobile = {"MOBILE_NUMBER": f"+4915{int(row['RIID']) % 10**9:09d}"}
                rows[feed].append((at, {**row, **mobile}))
    if CONTACTS in feeds:
        rows[CONTACTS] = [
            (
                end - timedelta(minutes=1),
                {
                    "RIID_": str(p.riid),
                    "CUSTOMER_ID_": p.customer_id,
                    "EMAIL_ADDRESS_": p.email,
                    "EMAIL_PERMISSION_STATUS_": "I" if p.opted_in and not p.complained else "O",
                    "MODIFIED_DATE_": _stamp(p.modified or start),
                },
            )
            for p in people
        ]

    written: list[Path] = []
    for feed in feeds:
        header = _header(feed)
        by_window: dict[int, list[dict[str, str]]] = defaultdict(list)
        for at, row in sorted(rows.get(feed, []), key=lambda item: item[0]):
            if at < end:
                by_window[int((at - start) / window)].append(row)
        for index in sorted(by_window):
            stamp = min(start + window * (index + 1), end)
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(header)
            writer.writerows([row.get(c, "") for c in header] for row in by_window[index])
            content = text.getvalue().encode()
            name = f"{account_id}_{feed}_{stamp:%Y%m%d_%H%M%S}.txt"
            if encrypt is not None and feed in encrypt_feeds:
                content, name = encrypt(content), name + ".gpg"
            path = out_dir / name
            _write_atomic(path, content)
            written.append(path)
    return sorted(written)


CLICK_HEADER = _header("CLICK")


def generate_click_file(
    path: Path,
    rows: int,
    *,
    seed: int = 7,
    account_id: str = "10001",
    start: datetime = datetime(2026, 1, 1),
    chunk_rows: int = 500_000,
) -> Path:
    """Write a CLICK file of `rows` rows quickly (vectorised chunks), atomically, for benchmarks."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    first = int(start.replace(tzinfo=UTC).timestamp())
    temp = path.with_name(f".{path.name}.part")
    offers = pl.Series([o[0] for o in _OFFERS])
    categories = pl.Series([o[1] for o in _OFFERS])
    urls = pl.Series([o[2] for o in _OFFERS])
    with temp.open("wb") as f:
        f.write((",".join(CLICK_HEADER) + "\n").encode())
        done = 0
        while done < rows:
            n = min(chunk_rows, rows - done)
            riid = pl.Series(rng.integers(1_000_000, 60_000_000, n))
            seconds = first + (14 * 86400 * (done + np.arange(n))) // max(rows, 1)
            captured = pl.Series(seconds * 1_000_000).cast(pl.Datetime("us"))
            campaign = pl.Series(rng.integers(0, len(_CAMPAIGNS), n))
            offer = pl.Series(rng.integers(0, len(_OFFERS), n))
            frame = pl.DataFrame(
                {
                    "EVENT_TYPE_ID": pl.repeat("5", n, eager=True),
                    "ACCOUNT_ID": pl.repeat(account_id, n, eager=True),
                    "LIST_ID": pl.repeat(LIST_ID, n, eager=True),
                    "RIID": riid,
                    "CUSTOMER_ID": "C" + riid.cast(pl.String).str.zfill(9),
                    "EVENT_CAPTURED_DT": captured.dt.strftime(DATE_FORMAT),
                    "EVENT_STORED_DT": (captured + timedelta(seconds=4)).dt.strftime(DATE_FORMAT),
                    "CAMPAIGN_ID": campaign + 3000,
                    "LAUNCH_ID": campaign * 10 + 70000 + (done + np.arange(n)) * 14 // rows,
                    "EMAIL_FORMAT": pl.repeat("H", n, eager=True),
                    "OFFER_NAME": offers.gather(offer),
                    "OFFER_NUMBER": offer + 1,
                    "OFFER_CATEGORY": categories.gather(offer),
                    "OFFER_URL": urls.gather(offer),
                }
            )
            frame.select(CLICK_HEADER).write_csv(f, include_header=False)
            done += n
    os.replace(temp, path)
    return path
