"""The sample Connect files: names, determinism, believable behaviour, the fast CLICK writer."""

import hashlib
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from responsys_assets.defs.ingest.parse import parse_event_file
from responsys_assets.lib.feeds import parse_file_name
from responsys_assets.sandbox.sample_data import (
    CLICK_HEADER,
    DEFAULT_FEEDS,
    generate_click_file,
    generate_event_files,
)

END = datetime(2026, 3, 1)


def digest(paths: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def events_of(paths: list[Path], feed: str) -> pl.DataFrame:
    frames = [
        b.events
        for p in paths
        if parse_file_name(p.name).feed == feed
        for b in parse_event_file(p, source_file=p.name, feed=feed)
    ]
    return pl.concat(frames)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("sample")
    return generate_event_files(out, contacts=600, days=9, end=END, seed=11)


def test_names_and_windows(files: list[Path]) -> None:
    feeds = {parse_file_name(p.name).feed for p in files}
    assert feeds == set(DEFAULT_FEEDS)
    stamps = {parse_file_name(p.name).stamp for p in files}
    assert max(stamps) == END and min(stamps) > datetime(2026, 2, 20)
    assert all(p.name.startswith("10001_") and p.name.endswith(".txt") for p in files)
    assert not [p for p in files[0].parent.iterdir() if p.name.startswith(".")]  # no temp files


def test_same_seed_same_bytes_other_seed_differs(files: list[Path], tmp_path: Path) -> None:
    again = generate_event_files(tmp_path / "a", contacts=600, days=9, end=END, seed=11)
    assert digest(again) == digest(files)
    other = generate_event_files(tmp_path / "b", contacts=600, days=9, end=END, seed=12)
    assert digest(other) != digest(files)


def test_engagement_patterns_are_believable(files: list[Path]) -> None:
    sent = events_of(files, "SENT")
    opens = events_of(files, "OPEN")
    clicks = events_of(files, "CLICK")
    converts = events_of(files, "CONVERT")
    bounces = pl.concat(
        [
            b.events
            for p in files
            if parse_file_name(p.name).feed == "BOUNCE"
            for b in parse_event_file(p, source_file=p.name, feed="BOUNCE")
        ]
    )
    assert sent.height > opens.height > clicks.height > converts.height > 0
    # a share never opens; engaged contacts open much more than the median opener
    per_contact = opens.group_by("riid").len()
    assert 0.2 < 1 - per_contact.height / sent["riid"].n_unique() < 0.8
    assert per_contact["len"].max() >= 4
    # lapsing contacts: some opened only early on
    first_half = opens.filter(pl.col("event_captured_at") < datetime(2026, 2, 24))
    late = opens.filter(pl.col("event_captured_at") >= datetime(2026, 2, 25))
    early_only = set(first_half["riid"]) - set(late["riid"])
    assert len(early_only) > 20
    # hard bounces stop further sends; soft bounces do not
    kinds = bounces["attributes"].str.json_path_match("$.BOUNCE_TYPE")
    assert {"H", "S"} <= set(kinds)
    hard = set(bounces.filter(kinds == "H")["riid"])
    last_bounce = (
        bounces.filter(kinds == "H").group_by("riid").agg(pl.col("event_captured_at").max())
    )
    after = sent.join(last_bounce, on="riid").filter(
        pl.col("event_captured_at") > pl.col("event_captured_at_right")
    )
    assert hard and after.height == 0
    # conversions follow clicks of the same contact
    assert set(converts["riid"]) <= set(clicks["riid"])
    # opt-outs, a few opt back in, a few complaints
    assert events_of(files, "OPT_OUT").height > 0
    assert events_of(files, "OPT_IN").height > 0
    assert events_of(files, "COMPLAINT").height > 0
    launches = events_of(files, "LAUNCH_STATE")
    assert set(sent["launch_id"]) <= set(launches["launch_id"])
    assert launches["campaign_name"].n_unique() >= 3
    assert sent["email"].str.contains(r"^[a-z]+\.[a-z]+\d+@example\.com$").all()


def test_encrypted_feeds_are_passed_through_encrypt(tmp_path: Path) -> None:
    paths = generate_event_files(
        tmp_path, contacts=50, days=2, end=END, feeds=("SENT", "CLICK", "OPEN"),
        encrypt=lambda data: b"ENC" + data[::-1],
    )  # fmt: skip
    encrypted = [p for p in paths if p.name.endswith(".txt.gpg")]
    assert encrypted and all(parse_file_name(p.name).encrypted_by_name for p in encrypted)
    assert {parse_file_name(p.name).feed for p in encrypted} == {"CLICK", "OPEN"}
    assert all(p.read_bytes().startswith(b"ENC") for p in encrypted)


def test_click_file_for_benchmarks(tmp_path: Path) -> None:
    path = generate_click_file(
        tmp_path / "10001_CLICK_20260101_000000.txt", 120_000, chunk_rows=50_000
    )
    with path.open() as f:
        assert f.readline().strip() == ",".join(CLICK_HEADER)
    batches = list(parse_event_file(path, source_file=path.name, feed="CLICK", batch_rows=40_000))
    assert sum(b.events.height for b in batches) == 120_000
    assert sum(b.rejected.height for b in batches) == 0
    assert len(batches) >= 3
    again = generate_click_file(tmp_path / "again.txt", 120_000, chunk_rows=50_000)
    assert digest([again])["again.txt"] == digest([path])[path.name]
