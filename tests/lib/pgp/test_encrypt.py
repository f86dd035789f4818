"""Encryption with pgpy to a public key: real GnuPG and our own Decryptor read what it writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from responsys_assets.lib.pgp import Decryptor, encrypt_bytes, is_pgp_file
from tests.support.gpg import GnuPG
from tests.support.pgp_data import connect_csv


def test_pgpy_encrypted_file_decrypts_with_gpg_to_a_gpg_made_key(
    gpg_home: GnuPG, tmp_path: Path
) -> None:
    data = connect_csv(20_000, seed=4)
    sample = tmp_path / "sample.gpg"
    sample.write_bytes(encrypt_bytes(gpg_home.public_key_armored, data))

    assert gpg_home.decrypt(sample) == data


@pytest.mark.parametrize("compress", [True, False], ids=["zlib", "uncompressed"])
def test_encrypted_bytes_decrypt_identically_with_gpg_and_our_decryptor(
    gpg_home: GnuPG, tmp_path: Path, compress: bool
) -> None:
    data = connect_csv(200_000, seed=9)
    sample = tmp_path / "sample.gpg"
    sample.write_bytes(encrypt_bytes(gpg_home.public_key_armored, data, compress=compress))
    assert is_pgp_file(sample)

    assert gpg_home.decrypt(sample) == data

    out = tmp_path / "out.csv"
    stats = Decryptor(gpg_home.private_key_armored, gpg_home.passphrase).decrypt_file(sample, out)
    assert out.read_bytes() == data
    assert stats.cipher == "AES256"
    assert stats.compression == ("zlib" if compress else "none")
