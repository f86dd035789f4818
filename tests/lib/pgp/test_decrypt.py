"""Streaming decryption of files written by real GnuPG."""

from __future__ import annotations

import io
import random
import tracemalloc
from pathlib import Path

import pytest

from responsys_assets.lib.pgp import (
    CorruptFileError,
    DecryptError,
    Decryptor,
    WrongKeyError,
    is_pgp_file,
)
from tests.support.gpg import GnuPG
from tests.support.pgp_data import connect_csv, decrypt_bytes


@pytest.fixture(scope="module")
def plain_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plain") / "events.csv"
    path.write_bytes(connect_csv(300_000))
    return path


@pytest.fixture(scope="module")
def decryptor(gpg_home: GnuPG) -> Decryptor:
    return Decryptor(gpg_home.private_key_armored, gpg_home.passphrase)


@pytest.fixture(scope="module")
def encrypted_file(gpg_home: GnuPG, plain_file: Path) -> Path:
    return gpg_home.encrypt(plain_file, plain_file.with_name("events.csv.gpg"))


# --- files from real gpg decrypt byte-identical --------------------------------------------


@pytest.mark.parametrize("compress_algo", ["zip", "zlib", "bzip2", "none"])
@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_gpg_encrypted_file_decrypts_byte_identical(
    gpg_home: GnuPG,
    decryptor: Decryptor,
    plain_file: Path,
    tmp_path: Path,
    compress_algo: str,
    armor: bool,
) -> None:
    src = gpg_home.encrypt(
        plain_file, tmp_path / "in.gpg", armor=armor, compress_algo=compress_algo
    )
    assert is_pgp_file(src)

    stats = decryptor.decrypt_file(src, tmp_path / "out.csv")

    assert (tmp_path / "out.csv").read_bytes() == plain_file.read_bytes()
    assert stats.bytes_out == plain_file.stat().st_size
    assert stats.bytes_in == src.stat().st_size
    assert stats.compression == compress_algo
    assert stats.cipher == "AES256"  # GnuPG's default for RSA keys


@pytest.mark.parametrize("cipher", ["AES128", "AES192", "AES256"])
def test_each_aes_key_size_decrypts(
    gpg_home: GnuPG, decryptor: Decryptor, plain_file: Path, tmp_path: Path, cipher: str
) -> None:
    src = gpg_home.encrypt(plain_file, tmp_path / "in.gpg", cipher_algo=cipher)

    out = tmp_path / "out.csv"
    assert decryptor.decrypt_file(src, out).cipher == cipher
    assert out.read_bytes() == plain_file.read_bytes()


@pytest.mark.parametrize("compress_algo", ["none", "zlib"])
@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_piped_multi_mb_file_streams_in_small_chunks(
    gpg_home: GnuPG, decryptor: Decryptor, tmp_path: Path, compress_algo: str, armor: bool
) -> None:
    # Piped input: gpg writes the literal packet with partial body lengths too.
    plain = tmp_path / "big.csv"
    plain.write_bytes(connect_csv(3_000_000, seed=11))
    src = gpg_home.encrypt(
        plain, tmp_path / "big.gpg", compress_algo=compress_algo, armor=armor, via_stdin=True
    )

    for chunk_size in (1000, 4096):
        data = decrypt_bytes(decryptor, src.read_bytes(), chunk_size=chunk_size)
        assert data == plain.read_bytes()


def test_signed_and_encrypted_file_skips_the_signature(
    gpg_home: GnuPG, decryptor: Decryptor, plain_file: Path, tmp_path: Path
) -> None:
    src = gpg_home.encrypt(plain_file, tmp_path / "signed.gpg", sign=True)

    out = tmp_path / "out.csv"
    decryptor.decrypt_file(src, out)
    assert out.read_bytes() == plain_file.read_bytes()


def test_memory_stays_bounded_while_streaming(
    gpg_home: GnuPG, decryptor: Decryptor, tmp_path: Path
) -> None:
    plain = tmp_path / "big.csv"
    plain.write_bytes(connect_csv(12_000_000, seed=3))
    src = gpg_home.encrypt(plain, tmp_path / "big.gpg")

    tracemalloc.start()
    try:
        with open(src, "rb") as fin, open(tmp_path / "out.csv", "wb") as fout:
            decryptor.decrypt_stream(fin, fout, chunk_size=64 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (tmp_path / "out.csv").read_bytes() == plain.read_bytes()
    # Memory follows the chunk size (a handful of 64 KiB buffers), not the 12 MB file.
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MiB for a 12 MB file: not streaming"


# --- keys and passphrases -------------------------------------------------------------------


def test_wrong_passphrase_is_a_clear_error_without_the_secret(gpg_home: GnuPG) -> None:
    with pytest.raises(DecryptError, match="passphrase .* is wrong") as info:
        Decryptor(gpg_home.private_key_armored, "not the passphrase")
    assert "not the passphrase" not in str(info.value)
    assert gpg_home.passphrase not in str(info.value)


def test_missing_passphrase_is_a_clear_error(gpg_home: GnuPG) -> None:
    with pytest.raises(DecryptError, match="passphrase-protected"):
        Decryptor(gpg_home.private_key_armored)


def test_unprotected_key_needs_no_passphrase(gpg_home: GnuPG) -> None:
    decryptor = Decryptor(gpg_home.other_private_key_armored)
    assert len(decryptor.key_ids) == 2  # primary + encryption subkey
    assert gpg_home.other_private_key_armored not in repr(decryptor)


@pytest.mark.parametrize(
    "text",
    ["", "not a key", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nAAAA\n-----END PGP PRIVATE KEY"],
)
def test_unreadable_key_text_is_a_clear_error(text: str) -> None:
    with pytest.raises(DecryptError, match="could not be read"):
        Decryptor(text)


def test_public_key_instead_of_private_is_a_clear_error(gpg_home: GnuPG) -> None:
    with pytest.raises(DecryptError, match="public key"):
        Decryptor(gpg_home.public_key_armored)


def test_wrong_key_names_both_sets_of_key_ids(
    gpg_home: GnuPG, encrypted_file: Path, tmp_path: Path
) -> None:
    other = Decryptor(gpg_home.other_private_key_armored)
    out = tmp_path / "out.csv"

    with pytest.raises(WrongKeyError) as info:
        other.decrypt_file(encrypted_file, out)

    message = str(info.value)
    assert str(encrypted_file) in message
    for key_id in other.key_ids:
        assert key_id in message
    ours = Decryptor(gpg_home.private_key_armored, gpg_home.passphrase)
    assert ours.key_ids[1] in message  # gpg encrypts to the encryption subkey
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


# --- damaged input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cut",
    ["1 byte", "header", "session key", "encrypted prefix", "middle", "MDC start", "MDC end"],
)
def test_truncated_file_fails_and_leaves_no_output(
    decryptor: Decryptor, encrypted_file: Path, tmp_path: Path, cut: str
) -> None:
    data = encrypted_file.read_bytes()
    keep = {
        "1 byte": 1,
        "header": 2,
        "session key": 100,
        "encrypted prefix": 290,
        "middle": len(data) // 2,
        "MDC start": len(data) - 20,
        "MDC end": len(data) - 1,
    }[cut]
    src = tmp_path / "cut.gpg"
    src.write_bytes(data[:keep])
    out = tmp_path / "out.csv"

    with pytest.raises(CorruptFileError, match="truncated|integrity"):
        decryptor.decrypt_file(src, out)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.gpg"]


@pytest.mark.parametrize("where", ["middle", "before the END line"])
def test_truncated_armored_file_fails(
    gpg_home: GnuPG, decryptor: Decryptor, plain_file: Path, tmp_path: Path, where: str
) -> None:
    text = gpg_home.encrypt(plain_file, tmp_path / "in.asc", armor=True).read_bytes()
    keep = len(text) // 2 if where == "middle" else text.index(b"-----END")

    with pytest.raises(CorruptFileError):
        decrypt_bytes(decryptor, text[:keep])


@pytest.mark.parametrize("offset_from_end", [1, 10, 30, 1000, 50_000])
def test_modified_ciphertext_fails_the_integrity_check(
    decryptor: Decryptor, encrypted_file: Path, offset_from_end: int
) -> None:
    data = bytearray(encrypted_file.read_bytes())
    data[-offset_from_end] ^= 0x01

    with pytest.raises(CorruptFileError):
        decrypt_bytes(decryptor, bytes(data))


def test_modified_session_key_fails(decryptor: Decryptor, encrypted_file: Path) -> None:
    """RSA decryption of a damaged session key yields random bytes (implicit rejection); about
    one damage in 25 then starts with a valid cipher id and fails pgpy's checksum instead.
    64 different damages reach that path with near certainty (it once escaped as a raw
    pgpy error)."""
    original = encrypted_file.read_bytes()
    for position in range(120, 184):  # inside the RSA-encrypted session key
        data = bytearray(original)
        data[position] ^= 0x40
        with pytest.raises(CorruptFileError):
            decrypt_bytes(decryptor, bytes(data))


@pytest.mark.parametrize(
    "data",
    [b"", b"RIID,EMAIL\n1,a@example.com\n", random.Random(5).randbytes(5000), b"\x85\x01"],
    ids=["empty", "csv", "random", "header-only"],
)
def test_garbage_is_a_decrypt_error(decryptor: Decryptor, data: bytes) -> None:
    with pytest.raises(DecryptError):
        decrypt_bytes(decryptor, data, name="garbage.gpg")


def test_password_only_file_is_refused_clearly(
    gpg_home: GnuPG, decryptor: Decryptor, plain_file: Path, tmp_path: Path
) -> None:
    src = tmp_path / "sym.gpg"
    gpg_home.run(*gpg_home.unlocked("--symmetric", "-o", str(src), str(plain_file)))

    with pytest.raises(DecryptError, match="password"):
        decryptor.decrypt_file(src, tmp_path / "out.csv")


def test_is_pgp_file_recognises_content_not_names(
    gpg_home: GnuPG, encrypted_file: Path, plain_file: Path, tmp_path: Path
) -> None:
    armored = gpg_home.encrypt(plain_file, tmp_path / "x.csv", armor=True)
    renamed = tmp_path / "plain.gpg"
    renamed.write_bytes(plain_file.read_bytes())

    assert is_pgp_file(encrypted_file)
    assert is_pgp_file(armored)
    assert not is_pgp_file(renamed)
    assert not is_pgp_file(plain_file)


# --- decompression bombs --------------------------------------------------------------------


@pytest.fixture(scope="module")
def zeros_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "zeros.csv"
    with open(path, "wb") as f:
        f.truncate(100 * 2**20)  # sparse: 100 MiB of zeros without using the disk
    return path


def test_decompression_bomb_stops_at_max_output_bytes(
    gpg_home: GnuPG, decryptor: Decryptor, zeros_file: Path, tmp_path: Path
) -> None:
    src = gpg_home.encrypt(zeros_file, tmp_path / "bomb.gpg", compress_algo="zlib")
    assert src.stat().st_size < 2**20

    tracemalloc.start()
    try:
        with pytest.raises(DecryptError, match="decompresses to more than"):
            decryptor.decrypt_file(
                src, tmp_path / "out.csv", max_output_bytes=20 * 2**20, chunk_size=64 * 1024
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 4 * 2**20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.gpg"]


def test_decompression_bomb_stops_at_max_ratio(
    gpg_home: GnuPG, decryptor: Decryptor, zeros_file: Path, tmp_path: Path
) -> None:
    src = gpg_home.encrypt(zeros_file, tmp_path / "bomb.gpg", compress_algo="bzip2")

    with pytest.raises(DecryptError, match="times its size"):
        decryptor.decrypt_file(src, tmp_path / "out.csv")

    with open(src, "rb") as fin:  # a generous limit lets it through
        stats = decryptor.decrypt_stream(fin, io.BytesIO(), max_ratio=10**7)
    assert stats.bytes_out == 100 * 2**20
