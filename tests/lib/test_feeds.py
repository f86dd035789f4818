"""File-name grammar and feed layouts."""

from datetime import datetime

import pytest

from responsys_assets.lib.feeds import (
    CONTACTS,
    LAYOUTS,
    UnknownFileName,
    known_feeds,
    parse_file_name,
)


def test_plain_click_file_name() -> None:
    f = parse_file_name("1234_CLICK_20190103_130532.txt")
    assert (f.account_id, f.feed, f.channel) == ("1234", "CLICK", "EMAIL")
    assert f.stamp == datetime(2019, 1, 3, 13, 5, 32)
    assert f.encrypted_by_name is False
    assert f.name == "1234_CLICK_20190103_130532.txt"


@pytest.mark.parametrize(
    ("name", "feed", "channel", "encrypted"),
    [
        ("1234_LAUNCH_STATE_20260103_000000.csv", "LAUNCH_STATE", "EMAIL", False),
        ("1234_OPT_OUT_20260103_000000.txt", "OPT_OUT", "EMAIL", False),
        ("1234_SMS_CLICK_20260103_000000.txt", "SMS_CLICK", "SMS", False),
        ("1234_WEBPUSH_OPEN_20260103_000000.txt.gpg", "WEBPUSH_OPEN", "WEBPUSH", True),
        ("1234_PUSH_SENT_20260103_000000.pgp", "PUSH_SENT", "PUSH", True),
        ("1234_MMS_SENT_20260103_000000.csv.asc", "MMS_SENT", "MMS", True),
        ("1234_click_20260103_000000.TXT", "CLICK", "EMAIL", False),
        ("1234_CONTACTS_20260103_000000.txt", CONTACTS, "EMAIL", False),
    ],
)
def test_feed_channel_and_encryption_from_name(
    name: str, feed: str, channel: str, encrypted: bool
) -> None:
    f = parse_file_name(name)
    assert (f.feed, f.channel, f.encrypted_by_name) == (feed, channel, encrypted)


def test_unknown_feed_token_gives_none_not_error() -> None:
    f = parse_file_name("1234_MYSTERY_FEED_20260103_000000.txt")
    assert f.feed is None
    assert f.channel == "EMAIL"
    assert parse_file_name("1234_SMS_MYSTERY_20260103_000000.txt").channel == "SMS"


def test_contacts_token_is_configurable() -> None:
    f = parse_file_name("1234_PROFILE_EXPORT_20260103_000000.txt", contacts_token="PROFILE_EXPORT")
    assert f.feed == CONTACTS
    assert parse_file_name("1234_PROFILE_EXPORT_20260103_000000.txt").feed is None


@pytest.mark.parametrize(
    "name",
    [
        "CLICK_20260103_000000.txt",
        "1234_CLICK_20260103.txt",
        "1234_CLICK_20260103_000000",
        "1234_CLICK_20260103_000000.zip",
        "1234_CLICK_20260103_000000.txt.ready",
        "1234_CLICK_20261399_000000.txt",
        "1234_CLICK_20260103_256000.txt",
        "1234__20260103_000000.txt",
        "",
        "a b_CLICK_20260103_000000.txt",
    ],
)
def test_names_outside_the_grammar_raise(name: str) -> None:
    with pytest.raises(UnknownFileName):
        parse_file_name(name)


def test_unknown_file_name_is_a_value_error() -> None:
    assert issubclass(UnknownFileName, ValueError)


def test_every_known_feed_has_a_layout() -> None:
    assert known_feeds() == set(LAYOUTS)
    for feed, layout in LAYOUTS.items():
        assert layout.feed == feed
        assert not set(layout.required) & set(layout.optional)


def test_layouts_follow_the_reference() -> None:
    assert LAYOUTS["CLICK"].required == ("RIID", "EVENT_CAPTURED_DT")
    assert "OFFER_URL" in LAYOUTS["CLICK"].optional
    assert "RIID" not in LAYOUTS["LAUNCH_STATE"].columns
    assert LAYOUTS["LAUNCH_STATE"].target == "launch_states"
    assert {"COMPLAINER_EMAIL", "SPAM_TYPE", "COMPLAINT_DT"} <= set(LAYOUTS["COMPLAINT"].columns)
    assert "PROGRAM_ID" in LAYOUTS["PROGRAM"].required
    assert LAYOUTS[CONTACTS].target == "contacts"
    assert "RIID_" in LAYOUTS[CONTACTS].required
