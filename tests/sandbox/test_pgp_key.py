"""The sandbox key pair: generated once, guarded by its passphrase, usable by gpg and by us."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from responsys_assets.lib.pgp import Decryptor, encrypt_bytes
from responsys_assets.sandbox.pgp_key import SandboxPGPKeyError, ensure_pgp_key
from tests.support.gpg import GnuPG
from tests.support.pgp_data import connect_csv, decrypt_bytes


@pytest.fixture(scope="module")
def sandbox_key_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandbox")


def test_sandbox_key_is_generated_once_with_private_files(sandbox_key_folder: Path) -> None:
    key = ensure_pgp_key(sandbox_key_folder, "sandbox pass")

    assert ensure_pgp_key(sandbox_key_folder, "sandbox pass") == key
    for path in sandbox_key_folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "PRIVATE" not in repr(key) and "sandbox pass" not in repr(key)
    with pytest.raises(SandboxPGPKeyError, match="does not unlock"):
        ensure_pgp_key(sandbox_key_folder, "another pass")
    with pytest.raises(SandboxPGPKeyError, match="passphrase-protected"):
        ensure_pgp_key(sandbox_key_folder)


@pytest.mark.parametrize("compress", [True, False])
def test_sandbox_files_decrypt_with_our_decryptor(sandbox_key_folder: Path, compress: bool) -> None:
    key = ensure_pgp_key(sandbox_key_folder, "sandbox pass")
    data = connect_csv(50_000)

    encrypted = encrypt_bytes(key.public_key_armored, data, compress=compress)

    decryptor = Decryptor(key.private_key_armored, key.passphrase)
    assert decrypt_bytes(decryptor, encrypted) == data


def test_sandbox_key_works_with_real_gpg_both_ways(
    gpg_home: GnuPG, sandbox_key_folder: Path, tmp_path: Path
) -> None:
    key = ensure_pgp_key(sandbox_key_folder, "sandbox pass")
    data = connect_csv(50_000, seed=2)
    gpg_home.run(
        *gpg_home.unlocked("--import", passphrase=key.passphrase),
        input=key.private_key_armored.encode(),
    )

    # pgpy encrypts (as the sandbox does) -> real gpg decrypts.
    sample = tmp_path / "sample.gpg"
    sample.write_bytes(encrypt_bytes(key.public_key_armored, data))
    assert gpg_home.decrypt(sample, passphrase=key.passphrase) == data

    # real gpg encrypts to the sandbox key -> our Decryptor decrypts.
    plain = tmp_path / "plain.csv"
    plain.write_bytes(data)
    src = gpg_home.encrypt(plain, tmp_path / "from_gpg.gpg", recipient="sandbox@responsys.invalid")
    out = tmp_path / "out.csv"
    Decryptor(key.private_key_armored, key.passphrase).decrypt_file(src, out)
    assert out.read_bytes() == data
