"""Bad and hostile input: malformed CSV, wrong encodings, impossible dates and RIIDs, bad PGP
files and a decompression bomb, dangerous file names, invalid YAML config, audience rules that
try to run statements, export names Responsys would refuse, a changed SFTP host key and
endpoints that would send credentials somewhere unsafe. Each is refused with a typed error that
names the problem, or rejected row by row, and nothing is half-loaded."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time

import duckdb
import pytest

from responsys_assets.config import ConfigError, parse_config
from responsys_assets.defs.ingest.load import FileRecord, load_file
from responsys_assets.defs.ingest.parse import FileContractError
from responsys_assets.defs.ingest.planning import plan_files
from responsys_assets.lib.file_names import UnsafeFileName, safe_local_name
from responsys_assets.lib.landing import LandingZone
from responsys_assets.lib.pgp import CorruptFileError, DecryptError, Decryptor, WrongKeyError
from responsys_assets.lib.responsys import (
    InsecureEndpoint,
    ResponsysClient,
    normalise_endpoint,
)
from responsys_assets.lib.sftp import HostKeyError, RemoteFile, SFTPSource
from responsys_assets.validation import validate_project
from responsys_assets.warehouse import apply_migrations
from tests.reliability.support import csv_data_rows, event_figures

pytestmark = pytest.mark.reliability
CATEGORY = "hostile input"

HEADER = (
    "EVENT_TYPE_ID,ACCOUNT_ID,LIST_ID,RIID,CUSTOMER_ID,EVENT_CAPTURED_DT,EVENT_STORED_DT,"
    "CAMPAIGN_ID,LAUNCH_ID,EMAIL_FORMAT\n"
)
ROW = "4,10001,4200,{riid},C1,{dt},03-Jan-2026 13:06:00,11,21,H\n"
GOOD = ROW.format(riid=1000001, dt="03-Jan-2026 13:05:32")
FILE = "10001_OPEN_20260104_000000.txt"


def row(riid="1000002", dt="03-Jan-2026 13:05:32") -> str:
    return ROW.format(riid=riid, dt=dt)


# name -> (bytes, configured delimiter, expected: "refused" or rows rejected)
CSV_CASES = {
    "unbalanced_quotes": (
        (
            HEADER + GOOD + '4,10001,4200,1000002,"C2,03-Jan-2026 13:05:32,,11,21,H\n' + GOOD
        ).encode(),
        None,
        "refused",
    ),
    "wrong_delimiter": ((HEADER + GOOD).replace(",", ";").encode(), ",", "refused"),
    "binary_garbage": (bytes(range(256)) * 40, None, "refused"),
    "huge_line": (
        (HEADER + GOOD + row().replace("C1", "C" + "x" * (3 << 20)) + GOOD).encode(),
        None,
        0,
    ),
    "empty_file": (b"", None, "refused"),
    "headers_only": (HEADER.encode(), None, 0),
    "latin1_encoding": (
        (HEADER + GOOD + row().replace("C1", "Müller")).encode("latin-1"),
        None,
        "refused",
    ),
    "utf16_encoding": ((HEADER + GOOD).encode("utf-16"), None, "refused"),
    "date_in_the_future": ((HEADER + GOOD + row(dt="03-Jan-2099 13:05:32")).encode(), None, 1),
    "date_in_the_far_past": ((HEADER + GOOD + row(dt="03-Jan-1970 13:05:32")).encode(), None, 1),
    "negative_riid": ((HEADER + GOOD + row(riid="-5") + row(riid="0")).encode(), None, 2),
    "overflowing_riid": (
        (HEADER + GOOD + row(riid="9" * 25) + row(riid="9223372036854775808")).encode(),
        None,
        2,
    ),
}
KNOWN_BUGS: dict[str, str] = {}


@pytest.fixture
def conn(tmp_path):
    db = duckdb.connect(str(tmp_path / "w.duckdb"))
    apply_migrations(db)
    yield db
    db.close()


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[c]))
        if c in KNOWN_BUGS
        else c
        for c in sorted(CSV_CASES)
    ],
)
def test_malformed_csv(case, conn, tmp_path, scenario):
    data, delimiter, expect = CSV_CASES[case]
    path = tmp_path / FILE
    path.write_bytes(data)
    record = FileRecord(FILE, "OPEN", "sha", len(data), False, str(path))
    # A good earlier version of the same file is loaded: a refused reload must keep it whole.
    earlier = tmp_path / "earlier.txt"
    earlier.write_text(HEADER + GOOD)
    load_file(conn, earlier, FileRecord(FILE, "OPEN", "old", 1, False, str(earlier)))
    if expect == "refused":
        with pytest.raises(FileContractError) as caught:
            load_file(conn, path, record, delimiter=delimiter)
        assert FILE in str(caught.value) or path.name in str(caught.value)
        lost, duplicated = event_figures(conn, {FILE: 1})  # the earlier load, untouched
        scenario.note = f"refused: {str(caught.value)[:120]}"
    else:
        result = load_file(conn, path, record, delimiter=delimiter)
        assert result.rejected == expect, dict(result.rejection_reasons)
        lost, duplicated = event_figures(conn, {FILE: csv_data_rows(path)})
        scenario.note = f"{result.loaded} loaded, {result.rejected} rejected with reasons"
    scenario.figures(lost=lost, duplicated=duplicated)
    assert (lost, duplicated) == (0, 0)


# --------------------------------------------------------------------------- PGP


def test_pgp_encrypted_to_another_key(gpg_home, tmp_path, scenario):
    plain = tmp_path / "p.txt"
    plain.write_text(HEADER + GOOD)
    other = gpg_home.encrypt(plain, tmp_path / "x.gpg", recipient=gpg_home.other_recipient)
    with Decryptor(gpg_home.private_key_armored, gpg_home.passphrase) as d:
        with pytest.raises(WrongKeyError) as caught:
            d.decrypt_file(other, tmp_path / "out.txt", name="x.gpg")
    assert not (tmp_path / "out.txt").exists()
    scenario.note = str(caught.value)[:120]


def test_pgp_truncated(gpg_home, tmp_path, scenario):
    plain = tmp_path / "p.txt"
    plain.write_text(HEADER + GOOD * 2000)
    full = gpg_home.encrypt(plain, tmp_path / "x.gpg").read_bytes()
    cut = tmp_path / "cut.gpg"
    cut.write_bytes(full[: len(full) * 2 // 3])
    with Decryptor(gpg_home.private_key_armored, gpg_home.passphrase) as d:
        with pytest.raises(CorruptFileError):
            d.decrypt_file(cut, tmp_path / "out.txt", name="cut.gpg")
    assert not list(tmp_path.glob("*out.txt*")), "partial plaintext left behind"


def test_pgp_decompression_bomb_is_bounded_and_rejected(gpg_home, tmp_path, scenario):
    bomb = tmp_path / "bomb.gpg"
    script = (
        f"head -c 512M /dev/zero | GNUPGHOME={gpg_home.home} gpg --batch --yes "
        f"--trust-model always --compress-algo bzip2 -r {gpg_home.recipient} -o {bomb} -e"
    )
    subprocess.run(["bash", "-c", script], check=True, timeout=120, capture_output=True)
    started = time.monotonic()
    with Decryptor(gpg_home.private_key_armored, gpg_home.passphrase) as d:
        with pytest.raises(DecryptError) as caught:
            d.decrypt_file(bomb, tmp_path / "out.txt", name="bomb.gpg")
    seconds = time.monotonic() - started
    assert "decompression bomb" in str(caught.value)
    assert not list(tmp_path.glob("*out.txt*"))
    scenario.note = f"{bomb.stat().st_size:,} bytes -> 512 MiB refused after {seconds:.1f} s"
    assert seconds < 30


# --------------------------------------------------------------------------- file names

HOSTILE_NAMES = [
    "../10001_OPEN_20260104_000000.txt",
    "/etc/passwd",
    "10001_OPEN_20260104\n_000000.txt",
    "10001_OPEN_$(touch pwned)_000000.txt",
    "10001_OPEN_`id`;rm -rf ~.txt",
    "..",
    ".hidden_OPEN_20260104_000000.txt",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_remote_file_name(name, tmp_path, scenario):
    with pytest.raises(UnsafeFileName):
        safe_local_name(name)
    zone = LandingZone(tmp_path / "landing")
    with pytest.raises(UnsafeFileName):
        zone.path_for(name)
    plan = plan_files([RemoteFile(name, 10, 1)], set(), {})
    assert plan.to_ingest == [] and repr(name) in plan.refused
    assert list(tmp_path.rglob("*")) == [zone.root]
    scenario.note = plan.refused[repr(name)][:120]


def test_hostile_names_on_a_real_sftp_server(tmp_path, sshd, sftp_dir, scenario):
    for name in ["a\nb_OPEN_20260104_000000.txt", "x;$(id)_OPEN_20260104_000000.txt"]:
        (sftp_dir / name).write_text(HEADER + GOOD)
    with SFTPSource(
        host=sshd.host,
        port=sshd.port,
        username=sshd.username,
        private_key=sshd.client_keys["ed25519"],
        known_hosts_path=str(sshd.known_hosts_path),
        remote_dir=str(sftp_dir),
    ) as source:
        listed = source.list_files()
        plan = plan_files(listed, set(), {})
        zone = LandingZone(tmp_path / "landing")
        for remote in listed:
            with pytest.raises(UnsafeFileName):
                source.download(remote.name, zone)
    assert len(listed) == 2 and plan.to_ingest == [] and len(plan.refused) == 2
    assert list(zone.root.iterdir()) == []


# --------------------------------------------------------------------------- config

CONFIG_CASES = {
    "unknown_key": ("ingest:\n  delimitter: ','\n", "delimitter"),
    "wrong_type": ("ingest:\n  settle_seconds: soon\n", "settle_seconds"),
    "exports_not_a_list": ("exports: {name: x}\n", "exports"),
    "not_a_mapping": ("- a\n- b\n", "top level"),
    "yaml_python_tag": ("account_id: !!python/object/apply:os.system ['id']\n", "YAML"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_invalid_yaml_config(case, scenario):
    text, named = CONFIG_CASES[case]
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="config.yaml")
    assert named in str(caught.value)
    scenario.note = str(caught.value).splitlines()[-1][:120]


HOSTILE_RULES = {
    "second_statement": "clicks_7d > 1; drop table audiences.profiles",
    "subquery": "(select count(*) from responsys.events) > 0",
    "file_read": "read_csv('/etc/passwd') is not null",
    "environment": "getenv('HOME') = ''",
    "comment_escape": "true -- and",
    "attach": "attach '/tmp/x.duckdb'",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_RULES))
def test_audience_rule_that_tries_to_run_statements(case, scenario):
    text = (
        "audiences:\n  definitions:\n    - name: evil\n"
        f"      rule: {json.dumps(HOSTILE_RULES[case])}\n"
    )
    with pytest.raises(ConfigError) as caught:
        validate_project(parse_config(text))
    assert "evil" in str(caught.value)
    scenario.note = str(caught.value).splitlines()[-1][:120]


EXPORT_NAMES = {
    "list_with_spaces": ("list", "My List!"),
    "list_too_long": ("list", "L" * 31),
    "field_reserved_word": ("optional_data", {"TABLE": "riid"}),
    "campaign_with_quote": ("campaign", "Win'Back"),
    "folder_bad_chars": ("folder", "a/b;c"),
    "field_starts_with_digit": ("optional_data", {"1ABC": "riid"}),
}


@pytest.mark.parametrize("case", sorted(EXPORT_NAMES))
def test_export_name_that_breaks_responsys_rules(case, scenario):
    export = {
        "name": "mail",
        "type": "campaign_trigger",
        "audience": "engaged",
        "campaign": "Win_Back",
        "list": "CONTACTS_LIST",
        "folder": "Audiences",
    }
    key, value = EXPORT_NAMES[case]
    export[key] = value
    with pytest.raises(ConfigError) as caught:
        validate_project(parse_config(json.dumps({"exports": [export]})))
    assert "mail" in str(caught.value)
    scenario.note = str(caught.value).splitlines()[-1][:120]


# --------------------------------------------------------------------------- endpoints


def test_sftp_server_with_a_different_host_key(tmp_path, sshd, sftp_dir, scenario):
    (sftp_dir / FILE).write_text(HEADER + GOOD)
    source = SFTPSource(
        host=sshd.host,
        port=sshd.port,
        username=sshd.username,
        private_key=sshd.client_keys["ed25519"],
        known_hosts_path=str(sshd.wrong_known_hosts_path),
        remote_dir=str(sftp_dir),
    )
    zone = LandingZone(tmp_path / "landing")
    with source, pytest.raises(HostKeyError) as caught:
        source.download(FILE, zone)
    assert "differs" in str(caught.value) and zone.get(FILE) is None
    scenario.note = str(caught.value)[:120]


@pytest.mark.parametrize(
    "endpoint", ["http://login2.responsys.net", "http://10.0.0.8", "ftp://login2.responsys.net"]
)
def test_endpoint_not_https_for_a_non_loopback_host(endpoint, scenario):
    with pytest.raises(InsecureEndpoint):
        normalise_endpoint(endpoint)
    with pytest.raises(InsecureEndpoint):
        ResponsysClient(endpoint=endpoint, username="u", password="p-secret")


class _Login(http.server.BaseHTTPRequestHandler):
    endpoint = ""
    requests: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        type(self).requests.append(self.path)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = json.dumps({"authToken": "tok-SECRET-123", "endPoint": self.endpoint}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize(
    "returned",
    ["https://api.evil.example.com", "http://api5.responsys.net", "https://responsys.net.evil.io"],
)
def test_login_response_endpoint_not_responsys_or_not_https(returned, scenario):
    handler = type("Login", (_Login,), {"endpoint": returned, "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = ResponsysClient(
            endpoint=f"http://127.0.0.1:{server.server_address[1]}",
            username="u",
            password="p-secret",
            timeout=5,
        )
        with client, pytest.raises(InsecureEndpoint) as caught:
            client.rate_limits()
    finally:
        server.shutdown()
        thread.join(5)
    assert handler.requests == ["/rest/api/v1.3/auth/token"], "the token went somewhere"
    assert "tok-SECRET-123" not in str(caught.value) and "p-secret" not in str(caught.value)
    scenario.note = str(caught.value)[:120]
