"""Real GnuPG for tests: a throwaway GNUPGHOME with two keys, and encryption with the `gpg` CLI.

Responsys encrypts Connect files with GnuPG, so decryption is tested against files that real
`gpg` wrote, not against our own encoder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

GPG = shutil.which("gpg")
_TIMEOUT = 120  # seconds for any one gpg command (key generation included)


@dataclass
class GnuPG:
    """A temporary GnuPG home with a passphrase-protected key and an unrelated second key."""

    home: Path
    recipient: str
    passphrase: str = field(repr=False)
    private_key_armored: str = field(default="", repr=False)
    public_key_armored: str = ""
    other_recipient: str = ""
    other_private_key_armored: str = field(default="", repr=False)

    def run(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """Runs `gpg --batch` in this home; raises with gpg's stderr if it fails."""
        env = {**os.environ, "GNUPGHOME": str(self.home)}
        result = subprocess.run(
            [GPG or "gpg", "--batch", "--yes", *args],
            input=input,
            env=env,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            command = " ".join(a for a in args if a != self.passphrase)
            stderr = result.stderr.decode(errors="replace")
            raise RuntimeError(f"gpg {command} failed ({result.returncode}): {stderr}")
        return result

    def unlocked(self, *args: str, passphrase: str | None = None) -> list[str]:
        """Arguments that let gpg use a passphrase without a pinentry program."""
        return [
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            self.passphrase if passphrase is None else passphrase,
            *args,
        ]

    def encrypt(
        self,
        src: Path,
        dst: Path,
        *,
        armor: bool = False,
        compress_algo: str = "zlib",
        recipient: str | None = None,
        cipher_algo: str | None = None,
        sign: bool = False,
        via_stdin: bool = False,
    ) -> Path:
        """Encrypts src to dst with `gpg -e`, as a Responsys-side script would.

        via_stdin feeds the data through a pipe, so gpg does not know its size and writes the
        literal packet with partial body lengths.
        """
        args = ["--trust-model", "always", "--compress-algo", compress_algo, "-o", str(dst)]
        args += ["-r", recipient or self.recipient]
        if armor:
            args.append("--armor")
        if cipher_algo:
            args += ["--cipher-algo", cipher_algo]
        if sign:
            args = self.unlocked("--local-user", self.recipient, "--sign", *args)
        if via_stdin:
            self.run(*args, "--encrypt", input=Path(src).read_bytes())
        else:
            self.run(*args, "--encrypt", str(src))
        return dst

    def decrypt(self, src: Path, passphrase: str | None = None) -> bytes:
        """Decrypts src with `gpg --decrypt` (the keys in this home) and returns the plaintext.

        gpg-agent sometimes answers the first use of a key imported a moment before with "Wrong
        secret key used" (about 1 in 50 fresh imports here); the same file then decrypts on the
        next try. That one answer is retried once; any other failure raises at once."""
        args = self.unlocked("--decrypt", str(src), passphrase=passphrase)
        try:
            return self.run(*args).stdout
        except RuntimeError as error:
            if "Wrong secret key used" not in str(error):
                raise
            return self.run(*args).stdout


def _generate_key(gpg: GnuPG, user_id: str, passphrase: str) -> None:
    """An RSA primary key for signing plus an encryption subkey, like `gpg --full-gen-key`."""
    gpg.run(*gpg.unlocked("--quick-gen-key", user_id, "rsa2048", "sign,cert", "never",
                          passphrase=passphrase))  # fmt: skip
    listing = gpg.run("--list-keys", "--with-colons", user_id).stdout.decode()
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
    gpg.run(*gpg.unlocked("--quick-add-key", fingerprint, "rsa2048", "encr", "never",
                          passphrase=passphrase))  # fmt: skip


@pytest.fixture(scope="session")
def gpg_home() -> Iterator[GnuPG]:
    """A GNUPGHOME (0700) with a passphrase-protected key and an unrelated unprotected one."""
    if GPG is None:
        pytest.skip("GnuPG (`gpg`) is not installed; install the gnupg package to run PGP tests")
    # Short path: gpg-agent's socket path must stay under ~100 characters.
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))
    home.chmod(0o700)
    gpg = GnuPG(home=home, recipient="connect@responsys.test", passphrase="correct horse 42")
    try:
        _generate_key(gpg, f"Responsys Connect <{gpg.recipient}>", gpg.passphrase)
        gpg.other_recipient = "someone-else@example.test"
        _generate_key(gpg, f"Someone Else <{gpg.other_recipient}>", "")
        gpg.private_key_armored = gpg.run(
            *gpg.unlocked("--export-secret-keys", "--armor", gpg.recipient)
        ).stdout.decode()
        gpg.public_key_armored = gpg.run("--export", "--armor", gpg.recipient).stdout.decode()
        gpg.other_private_key_armored = gpg.run(
            *gpg.unlocked("--export-secret-keys", "--armor", gpg.other_recipient, passphrase="")
        ).stdout.decode()
        yield gpg
    finally:
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"],
            env={**os.environ, "GNUPGHOME": str(home)},
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
        shutil.rmtree(home, ignore_errors=True)
