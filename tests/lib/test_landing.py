import hashlib
import stat

import pytest

from responsys_assets.lib.file_names import UnsafeFileName, safe_local_name
from responsys_assets.lib.landing import LandedFileChanged, LandingZone, sha256_file


def _land(zone: LandingZone, name: str, data: bytes):
    with zone.write(name) as w:
        w.write(data[:3])
        w.write(data[3:])
    return w.landed


def test_write_lands_file_with_sha256_and_private_modes(tmp_path):
    zone = LandingZone(tmp_path / "landing")
    landed = _land(zone, "events_20240101.csv.gpg", b"hello world")

    assert landed.path == zone.path_for("events_20240101.csv.gpg")
    assert landed.path.read_bytes() == b"hello world"
    assert landed.sha256 == hashlib.sha256(b"hello world").hexdigest() == sha256_file(landed.path)
    assert landed.size == 11
    assert stat.S_IMODE(zone.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(landed.path.stat().st_mode) == 0o600
    assert zone.get("events_20240101.csv.gpg") == landed
    assert zone.get("missing.csv") is None
    assert sorted(p.name for p in zone.root.iterdir()) == [
        "events_20240101.csv.gpg",
        "events_20240101.csv.gpg.sha256",
    ]


def test_get_reads_sha_from_sidecar(tmp_path):
    zone = LandingZone(tmp_path)
    _land(zone, "a.csv", b"abc")
    # The sidecar is trusted, so a (fake) value written there is what get() reports.
    (tmp_path / "a.csv.sha256").write_text("f" * 64 + "  a.csv\n")
    assert zone.get("a.csv").sha256 == "f" * 64


def test_temp_file_is_invisible_until_clean_exit_and_removed_on_error(tmp_path):
    zone = LandingZone(tmp_path)
    with pytest.raises(RuntimeError, match="network"):
        with zone.write("a.csv") as w:
            w.write(b"partial")
            temps = [p.name for p in tmp_path.iterdir()]
            assert len(temps) == 1 and temps[0].startswith(".a.csv.")
            assert temps[0].endswith(".part")
            assert not zone.path_for("a.csv").exists()
            raise RuntimeError("network dropped")
    assert list(tmp_path.iterdir()) == []
    assert zone.get("a.csv") is None


def test_same_bytes_again_keeps_existing_file(tmp_path):
    zone = LandingZone(tmp_path)
    first = _land(zone, "a.csv", b"same")
    inode = first.path.stat().st_ino
    second = _land(zone, "a.csv", b"same")
    assert second == first
    assert first.path.stat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.csv.sha256"]


def test_changed_bytes_are_kept_aside_and_never_overwrite(tmp_path):
    zone = LandingZone(tmp_path)
    first = _land(zone, "a.csv", b"version 1")
    with pytest.raises(LandedFileChanged) as caught:
        _land(zone, "a.csv", b"version 2")

    error = caught.value
    new_sha = hashlib.sha256(b"version 2").hexdigest()
    assert error.name == "a.csv"
    assert error.existing_sha256 == first.sha256
    assert error.new_sha256 == new_sha
    assert error.kept_path == tmp_path / ".changed" / f"a.csv.{new_sha[:12]}"
    assert error.kept_path.read_bytes() == b"version 2"
    assert first.path.read_bytes() == b"version 1"
    assert zone.get("a.csv").sha256 == first.sha256
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "/etc/passwd",
        "a\nb",
        "a\x00b",
        "$(rm -rf)",
        ".hidden",
        ".",
        "..",
        "",
        "a\\b",
        "a b.csv",
        "caf\u00e9.csv",
        "x" * 201,
    ],
)
def test_hostile_names_are_refused(tmp_path, name):
    with pytest.raises(UnsafeFileName) as caught:
        safe_local_name(name)
    assert repr(name)[:60] in str(caught.value)

    zone = LandingZone(tmp_path / "zone")
    with pytest.raises(UnsafeFileName):
        with zone.write(name) as w:
            w.write(b"x")
    assert list((tmp_path / "zone").iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["zone"]


def test_plain_names_are_accepted():
    for name in ["events_20240101.csv.gpg", "A-b_c.1", "x" * 200]:
        assert safe_local_name(name) == name


def test_sidecar_suffix_is_reserved(tmp_path):
    with pytest.raises(UnsafeFileName, match="reserved"):
        LandingZone(tmp_path).path_for("a.csv.sha256")
