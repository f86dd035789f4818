"""The embedded sandbox's PGP key pair.

The sandbox plays Responsys: it encrypts the Connect files it serves to this key (with
`responsys_assets.lib.pgp.encrypt_bytes`), and the pipeline decrypts them with the private half,
exactly as in production (where the key comes from the customer's GnuPG). The key is generated
once with pgpy and reloaded afterwards.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    # pgpy 0.6.0 references cipher classes that cryptography moved to "decrepit".
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from pgpy import PGPUID, PGPKey
    from pgpy.constants import (
        CompressionAlgorithm,
        HashAlgorithm,
        KeyFlags,
        PubKeyAlgorithm,
        SymmetricKeyAlgorithm,
    )
    from pgpy.errors import PGPDecryptionError, PGPError

__all__ = ["SandboxPGPKey", "SandboxPGPKeyError", "ensure_pgp_key"]

PRIVATE_KEY_FILE = "sandbox_pgp_private.asc"
PUBLIC_KEY_FILE = "sandbox_pgp_public.asc"
_KEY_BITS = 3072
_USER_ID = ("Responsys Sandbox", "sandbox key, not for production", "sandbox@responsys.invalid")


class SandboxPGPKeyError(Exception):
    """The stored sandbox key cannot be used (unreadable or a different passphrase)."""


@dataclass(frozen=True)
class SandboxPGPKey:
    """The sandbox key pair as ASCII armor; secrets are kept out of the repr."""

    private_key_armored: str = field(repr=False)
    public_key_armored: str
    passphrase: str | None = field(default=None, repr=False)


def ensure_pgp_key(folder: Path, passphrase: str | None = None) -> SandboxPGPKey:
    """Loads the sandbox key pair from folder, generating it (files mode 0600) the first time."""
    folder = Path(folder)
    private_path, public_path = folder / PRIVATE_KEY_FILE, folder / PUBLIC_KEY_FILE
    if private_path.exists() and public_path.exists():
        key = SandboxPGPKey(private_path.read_text(), public_path.read_text(), passphrase)
        _check_passphrase(key, private_path)
        return key
    folder.mkdir(parents=True, exist_ok=True)
    private, public = _generate(passphrase)
    _write_private(public_path, public)
    _write_private(private_path, private)  # written last: its presence marks a complete pair
    return SandboxPGPKey(private, public, passphrase)


def _generate(passphrase: str | None) -> tuple[str, str]:
    """A primary signing/certifying key with an encryption subkey, as gpg lays them out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        primary = PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, _KEY_BITS)
        primary.add_uid(
            PGPUID.new(*_USER_ID),
            usage={KeyFlags.Sign, KeyFlags.Certify},
            hashes=[HashAlgorithm.SHA256, HashAlgorithm.SHA512],
            ciphers=[SymmetricKeyAlgorithm.AES256, SymmetricKeyAlgorithm.AES128],
            compression=[
                CompressionAlgorithm.ZLIB,
                CompressionAlgorithm.ZIP,
                CompressionAlgorithm.Uncompressed,
            ],
        )
        subkey = PGPKey.new(PubKeyAlgorithm.RSAEncryptOrSign, _KEY_BITS)
        primary.add_subkey(subkey, usage={KeyFlags.EncryptCommunications, KeyFlags.EncryptStorage})
        if passphrase:
            primary.protect(passphrase, SymmetricKeyAlgorithm.AES256, HashAlgorithm.SHA256)
        return str(primary), str(primary.pubkey)


def _check_passphrase(key: SandboxPGPKey, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            private, _ = PGPKey.from_blob(key.private_key_armored)
        except (PGPError, ValueError):
            raise SandboxPGPKeyError(
                f"{path} is not a readable PGP private key; delete it to generate a new one"
            ) from None
        if not private.is_protected:
            if key.passphrase:
                raise SandboxPGPKeyError(
                    f"{path} has no passphrase but one was given; delete the key files in "
                    f"{path.parent} to generate a protected one, or pass no passphrase"
                )
            return
        if not key.passphrase:
            raise SandboxPGPKeyError(f"{path} is passphrase-protected; pass its passphrase")
        try:
            with private.unlock(key.passphrase):
                pass
        except PGPDecryptionError:
            raise SandboxPGPKeyError(
                f"the passphrase given does not unlock {path}; pass the one it was made with "
                f"or delete the key files in {path.parent} to generate a new pair"
            ) from None


def _write_private(path: Path, text: str) -> None:
    """Writes text to path with mode 0600 from the start (never briefly world-readable)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
