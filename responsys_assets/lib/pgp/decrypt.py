"""Streaming OpenPGP decryption of Responsys Connect files.

pgpy loads and unlocks the private key and decrypts the session key; the bulk of the message is
parsed, decrypted (AES-CFB + MDC), decompressed and written here in fixed-size chunks, so memory
stays constant and throughput is close to the `gpg` CLI (pgpy alone holds the whole file in
memory several times over).

Supported: binary or ASCII-armored messages with public-key session keys (RSA, ECDH), the SEIPD
v1 packet (the one with the MDC integrity check, what GnuPG 2.2 writes), ZIP/ZLIB/BZip2/no
compression, old and new packet headers with partial body lengths. One-pass signature and
signature packets are skipped, not verified. Refused with a clear error: password-only
(symmetric) messages, SED packets without integrity protection and AEAD (OCB) packets. The
armor checksum is not checked; the MDC covers integrity.

`decrypt_stream` writes plaintext before the MDC at the end has been verified; on error the
output must be discarded. `decrypt_file` does that: it writes to a temp file and renames.
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import hashlib
import hmac
import os
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit_algorithms
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.utils import CryptographyDeprecationWarning

from responsys_assets.lib.pgp.armor import _Dearmor, _is_armored
from responsys_assets.lib.pgp.errors import CorruptFileError, DecryptError, WrongKeyError
from responsys_assets.lib.pgp.packets import (
    _AEAD,
    _COMPRESSED,
    _ENCRYPTED_START_TAGS,
    _LITERAL,
    _MARKER,
    _OPS,
    _PKESK,
    _SED,
    _SEIPD,
    _SIG,
    _SKESK,
    _drain,
    _FileSource,
    _packet_tag,
    _PacketBody,
    _read_exact,
    _read_header,
    _read_small_body,
    _Stream,
)

with warnings.catch_warnings():
    # pgpy 0.6.0 references cipher classes that cryptography moved to "decrepit".
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from pgpy import PGPKey
    from pgpy.constants import PubKeyAlgorithm, String2KeyType
    from pgpy.errors import PGPDecryptionError, PGPError
    from pgpy.packet import Packet
    from pgpy.packet.fields import RSAPriv, String2Key

DEFAULT_MAX_OUTPUT_BYTES = 50 * 1024**3
DEFAULT_MAX_RATIO = 1000.0
_RATIO_GRACE_BYTES = 10 * 1024**2  # small files may legitimately compress very well
_MDC_LEN = 22  # 0xD3 0x14 + SHA-1

# OpenPGP symmetric algorithm id -> (name, cryptography class, key bytes).
_CIPHERS = {
    1: ("IDEA", decrepit_algorithms.IDEA, 16),
    2: ("TripleDES", decrepit_algorithms.TripleDES, 24),
    3: ("CAST5", decrepit_algorithms.CAST5, 16),
    4: ("Blowfish", decrepit_algorithms.Blowfish, 16),
    7: ("AES128", algorithms.AES, 16),
    8: ("AES192", algorithms.AES, 24),
    9: ("AES256", algorithms.AES, 32),
    11: ("Camellia128", decrepit_algorithms.Camellia, 16),
    12: ("Camellia192", decrepit_algorithms.Camellia, 24),
    13: ("Camellia256", decrepit_algorithms.Camellia, 32),
}
_COMPRESSION_NAMES = {0: "none", 1: "zip", 2: "zlib", 3: "bzip2"}


@dataclass(frozen=True)
class DecryptStats:
    """What one decryption read and wrote, for asset metadata and benchmarks."""

    bytes_in: int
    bytes_out: int
    seconds: float
    cipher: str
    compression: str

    @property
    def mb_per_s(self) -> float:
        """Plaintext throughput in MB/s (10**6 bytes)."""
        return self.bytes_out / 1e6 / self.seconds if self.seconds > 0 else 0.0


def is_pgp_file(path: Path) -> bool:
    """Tell by content whether a file is an encrypted OpenPGP message (armored or binary)."""
    with open(path, "rb") as f:
        head = f.read(256)
    if _is_armored(head):
        return True
    return bool(head) and _packet_tag(head[0]) in _ENCRYPTED_START_TAGS


class _SeipdDecryptor(_Stream):
    """Decrypts a SEIPD v1 body: CFB with a zero IV, a checked random prefix, a trailing MDC."""

    def __init__(self, body: _PacketBody, cipher_id: int, key: bytes, chunk_size: int) -> None:
        super().__init__()
        name, algorithm, key_len = _CIPHERS[cipher_id]
        try:
            cipher_algorithm = algorithm(bytes(key[:key_len]))
            block = cipher_algorithm.block_size // 8
            self._cipher = Cipher(cipher_algorithm, CFB(b"\0" * block)).decryptor()
        except UnsupportedAlgorithm:
            raise DecryptError(
                f"the file is encrypted with {name}, which this system's cryptography library "
                "cannot decrypt; ask the sender to encrypt with AES"
            ) from None
        self._body = body
        self._chunk_size = chunk_size
        prefix = self._cipher.update(_read_exact(body, block + 2, "the encrypted data"))
        if prefix[block - 2 : block] != prefix[block : block + 2]:
            raise CorruptFileError(
                "the session key does not decrypt the data (quick check failed): "
                "the file is corrupt or was modified"
            )
        self._sha1 = hashlib.sha1(prefix)
        self._tail = b""

    def _fill(self) -> bytes:
        while True:
            ciphertext = self._body.read(self._chunk_size)
            if not ciphertext:
                self._check_mdc(self._tail + self._cipher.finalize())
                return b""
            data = self._tail + self._cipher.update(ciphertext)
            out, self._tail = data[:-_MDC_LEN], data[-_MDC_LEN:]
            if out:
                self._sha1.update(out)
                return out

    def _check_mdc(self, tail: bytes) -> None:
        if len(tail) == _MDC_LEN and tail[:2] == b"\xd3\x14":
            self._sha1.update(tail[:2])
            if hmac.compare_digest(self._sha1.digest(), tail[2:]):
                return
        raise CorruptFileError(
            "the integrity check (MDC) failed: the file is truncated or was modified"
        )


class _OutputBudget:
    """Stops decompression bombs: caps total output and the output/input ratio."""

    def __init__(self, source: _FileSource, max_output_bytes: int, max_ratio: float) -> None:
        self._source = source
        self._max_output = max_output_bytes
        self._max_ratio = max_ratio
        self.produced = 0

    def add(self, n: int) -> None:
        self.produced += n
        if self.produced > self._max_output:
            raise DecryptError(
                f"the file decompresses to more than {self._max_output:,} bytes "
                "(max_output_bytes); refusing it as a possible decompression bomb, raise the "
                "limit if the file is genuine"
            )
        if self.produced > _RATIO_GRACE_BYTES and self.produced > self._max_ratio * max(
            self._source.bytes_in, 1
        ):
            raise DecryptError(
                f"the file decompresses to more than {self._max_ratio:g} times its size "
                "(max_ratio); refusing it as a possible decompression bomb, raise the limit if "
                "the file is genuine"
            )


class _Decompressor(_Stream):
    """Decompresses a compressed-data packet body, never more than one chunk at a time."""

    def __init__(self, body: _PacketBody, algo: int, budget: _OutputBudget, chunk_size: int):
        super().__init__()
        self._body = body
        self._algo = algo
        self._budget = budget
        self._chunk_size = chunk_size
        self._pending = b""
        if algo == 1:
            self._z = zlib.decompressobj(-15)
        elif algo == 2:
            self._z = zlib.decompressobj()
        elif algo == 3:
            self._z = bz2.BZ2Decompressor()
        elif algo != 0:
            raise DecryptError(f"the file uses unknown compression algorithm {algo}")

    def _fill(self) -> bytes:
        try:
            while True:
                out = self._next()
                if out is None:
                    return b""
                if out:
                    self._budget.add(len(out))
                    return out
        except (zlib.error, EOFError, _Bz2DataError):
            raise CorruptFileError(
                "the compressed data inside is damaged: the file is corrupt or was modified"
            ) from None

    def _next(self) -> bytes | None:
        """Some output (maybe empty), or None at the end."""
        if self._algo == 0:
            return self._body.read(self._chunk_size) or None
        if self._algo == 3:
            return self._next_bz2()
        if self._pending:
            out = self._z.decompress(self._pending, self._chunk_size)
            self._pending = self._z.unconsumed_tail
            return out
        if self._z.eof:
            _drain(self._body, self._chunk_size)
            return None
        data = self._body.read(self._chunk_size)
        if not data:
            out = self._z.flush()
            if not self._z.eof:
                raise CorruptFileError("the compressed data inside ends early: it is truncated")
            return out or None
        out = self._z.decompress(data, self._chunk_size)
        self._pending = self._z.unconsumed_tail
        return out

    def _next_bz2(self) -> bytes | None:
        if self._z.eof:
            _drain(self._body, self._chunk_size)
            return None
        data = b""
        if self._z.needs_input:
            data = self._body.read(self._chunk_size)
            if not data:
                raise CorruptFileError("the compressed data inside ends early: it is truncated")
        try:
            return self._z.decompress(data, self._chunk_size)
        except OSError as exc:  # bz2 reports bad data as OSError("Invalid data stream")
            raise _Bz2DataError from exc


class _Bz2DataError(Exception):
    """bz2 found damaged data (kept apart from OSErrors of reading the file)."""


# --- the decryptor --------------------------------------------------------------------------


class Decryptor:
    """Decrypts OpenPGP files with one armored private key (and its passphrase, if any).

    The key is unlocked once here and stays unlocked in memory until `close()`.
    """

    def __init__(self, armored_private_key: str, passphrase: str | None = None) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                key, _ = PGPKey.from_blob(armored_private_key)
            except (PGPError, ValueError, TypeError, KeyError, IndexError, NotImplementedError):
                raise DecryptError(
                    "the PGP private key could not be read: expected an ASCII-armored private "
                    "key block, header and footer lines included (export it with "
                    "`gpg --export-secret-keys --armor`)"
                ) from None
        if key.is_public:
            raise DecryptError(
                "the PGP key given is a public key; decryption needs the private key "
                "(`gpg --export-secret-keys --armor`)"
            )
        self._key = key
        self._keys = {k.fingerprint.keyid: k for k in [key, *key.subkeys.values()]}
        self.key_ids: list[str] = list(self._keys)
        self._unlocked = contextlib.ExitStack()
        if key.is_protected:
            for k in self._keys.values():
                _use_streaming_s2k(k)
            if not passphrase:
                raise DecryptError(
                    f"the PGP private key {key.fingerprint.keyid} is passphrase-protected; "
                    "set its passphrase"
                )
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                    self._unlocked.enter_context(key.unlock(passphrase))
            except PGPDecryptionError:
                raise DecryptError(
                    f"the passphrase for PGP private key {key.fingerprint.keyid} is wrong"
                ) from None

        self._cached_materials: list[RSAPriv] = []

    def __repr__(self) -> str:
        return f"Decryptor(key_ids={self.key_ids!r})"

    def close(self) -> None:
        """Forget the unlocked key material."""
        for material in self._cached_materials:
            vars(material).pop("__privkey__", None)
        self._cached_materials = []
        self._unlocked.close()

    def __enter__(self) -> Decryptor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def decrypt_file(self, src: Path, dst: Path, **kw: Any) -> DecryptStats:
        """Decrypts src into dst atomically: dst appears complete or not at all."""
        src, dst = Path(src), Path(dst)
        kw.setdefault("name", str(src))
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
        tmp = Path(tmp_name)
        try:
            with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
                stats = self.decrypt_stream(fin, fout, **kw)
            os.replace(tmp, dst)
            return stats
        finally:
            tmp.unlink(missing_ok=True)

    def decrypt_stream(
        self,
        src: BinaryIO,
        dst: BinaryIO,
        *,
        name: str = "<stream>",
        chunk_size: int = 1 << 20,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        max_ratio: float = DEFAULT_MAX_RATIO,
    ) -> DecryptStats:
        """Decrypts src into dst chunk by chunk; on error dst holds partial data to discard."""
        started = time.perf_counter()
        try:
            source = _FileSource(src, chunk_size)
            budget = _OutputBudget(source, max_output_bytes, max_ratio)
            cipher, compression, written = self._decrypt(source, dst, budget, chunk_size)
        except DecryptError as exc:
            raise type(exc)(f"{name}: {exc}") from None
        return DecryptStats(
            bytes_in=source.bytes_in,
            bytes_out=written,
            seconds=time.perf_counter() - started,
            cipher=cipher,
            compression=compression,
        )

    def _decrypt(
        self, source: _FileSource, dst: BinaryIO, budget: _OutputBudget, chunk_size: int
    ) -> tuple[str, str, int]:
        stream: _Stream = source
        if _is_armored(source.peek(64)):
            stream = _Dearmor(source, chunk_size)
        seipd = self._open_encrypted_data(stream, chunk_size)
        cipher = _CIPHERS[seipd.cipher_id][0]
        plain = _SeipdDecryptor(seipd.body, seipd.cipher_id, seipd.key, chunk_size)
        compression, written = _write_literal(plain, dst, budget, chunk_size)
        _drain(plain, chunk_size)  # reaching the end checks the MDC
        if stream.read(1):
            raise CorruptFileError("there is unexpected data after the encrypted message")
        return cipher, compression, written

    def _open_encrypted_data(self, stream: _Stream, chunk_size: int) -> _SessionAndBody:
        """Reads the session-key packets up to the encrypted data; returns key and body."""
        pkesks: list[bytes] = []
        symmetric = False
        while True:
            header = _read_header(stream)
            if header is None:
                if not pkesks and not symmetric:
                    raise CorruptFileError("the file is empty or not an OpenPGP message")
                raise CorruptFileError("the file ends before the encrypted data: it is truncated")
            body = _PacketBody(stream, header, chunk_size)
            if header.tag == _PKESK:
                pkesks.append(_read_small_body(body, "session key"))
            elif header.tag == _SKESK:
                symmetric = True
                _read_small_body(body, "session key")
            elif header.tag == _MARKER:
                _read_small_body(body, "marker")
            elif header.tag == _SEIPD:
                break
            elif header.tag == _SED:
                raise DecryptError(
                    "the file uses the legacy encryption packet without integrity protection "
                    "(SED); it is refused. Ask the sender to use a current GnuPG (MDC)"
                )
            elif header.tag == _AEAD:
                raise DecryptError(
                    "the file uses AEAD (OCB) encryption from GnuPG 2.3+, which is not "
                    "supported; ask the sender to encrypt with --rfc4880 or a key without AEAD"
                )
            elif header.tag in (_COMPRESSED, _LITERAL, _OPS, _SIG):
                raise DecryptError("the file is OpenPGP data but not encrypted")
            else:
                raise CorruptFileError(
                    f"the file holds an unexpected OpenPGP packet (type {header.tag}) "
                    "before the encrypted data"
                )
        version = _read_exact(body, 1, "the encrypted data")[0]
        if version != 1:
            raise DecryptError(
                f"the file uses encrypted-data packet version {version} (RFC 9580 v2/AEAD), "
                "which is not supported; ask the sender to encrypt for OpenPGP v4 (RFC 4880)"
            )
        if not pkesks:
            raise DecryptError(
                "the file is encrypted with a password (symmetric), not to a public key; "
                "ask the sender to encrypt to our public key"
            )
        cipher_id, key = self._session_key(pkesks)
        return _SessionAndBody(cipher_id, key, body)

    def _cache_rsa_private_key(self, key: PGPKey) -> None:
        """Builds the RSA private key object once: pgpy rebuilds and re-validates it on every
        use (twice per file, ~0.15 s each for 3072 bits)."""
        material = key._key.keymaterial
        if isinstance(material, RSAPriv) and "__privkey__" not in vars(material):
            private = material.__privkey__()
            material.__privkey__ = lambda: private
            self._cached_materials.append(material)

    def _session_key(self, pkesks: list[bytes]) -> tuple[int, bytes]:
        recipients = []
        for raw in pkesks:
            if len(raw) < 10 or raw[0] != 3:
                raise CorruptFileError("a session key packet is malformed or of an unknown version")
            key_id = raw[1:9].hex().upper()
            recipients.append(key_id)
            wildcard = key_id == "0" * 16  # hidden recipient (gpg --throw-keyids)
            candidates = list(self._keys.values()) if wildcard else [self._keys.get(key_id)]
            for candidate in candidates:
                if candidate is None:
                    continue
                try:
                    return self._decrypt_session_key(raw, candidate)
                except CorruptFileError:
                    if not wildcard:
                        raise
        raise WrongKeyError(
            f"the file is encrypted to key id(s) {', '.join(recipients)} but our private key "
            f"has {', '.join(self.key_ids)}; configure the private key the sender encrypts to"
        )

    def _decrypt_session_key(self, raw: bytes, key: PGPKey) -> tuple[int, bytes]:
        self._cache_rsa_private_key(key)
        packet_bytes = bytearray(b"\xc1\xff" + len(raw).to_bytes(4, "big") + raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                pkesk = Packet(packet_bytes)
                cipher, session_key = pkesk.decrypt_sk(key._key)
            except NotImplementedError as exc:
                if not any(isinstance(arg, PubKeyAlgorithm) for arg in exc.args):
                    # a "symmetric algorithm" from a damaged key's random bytes (e.g. 0)
                    raise CorruptFileError(
                        "the session key could not be decrypted: the file is corrupt or was "
                        "modified"
                    ) from None
                raise DecryptError(
                    f"the session key uses public-key algorithm {exc}, which is not supported"
                ) from None
            except (PGPError, PGPDecryptionError, ValueError, TypeError, IndexError):
                # cryptography's RSA decryption rejects a damaged key implicitly (it returns
                # random bytes); pgpy then fails the key's checksum with PGPDecryptionError,
                # which is not a PGPError.
                raise CorruptFileError(
                    "the session key could not be decrypted: the file is corrupt or was modified"
                ) from None
        if int(cipher) not in _CIPHERS:
            raise DecryptError(
                f"the file uses symmetric cipher {cipher!s}, which is not supported; "
                "ask the sender to encrypt with AES"
            )
        return int(cipher), bytes(session_key)


def _use_streaming_s2k(key: PGPKey) -> None:
    """Makes pgpy's key unlock hash its S2K input in blocks: pgpy builds the whole iterated
    input in memory, 65 MB (and a copy) for GnuPG's default count, per key."""
    s2k = getattr(key._key.keymaterial, "s2k", None)
    if isinstance(s2k, String2Key):
        s2k.derive_key = functools.partial(_derive_s2k_key, s2k)


def _derive_s2k_key(s2k: String2Key, passphrase: str | bytes) -> bytes:
    """pgpy's String2Key.derive_key (RFC 4880 3.7.1), fed to the hash 64 KiB at a time."""
    secret = passphrase if isinstance(passphrase, bytes) else passphrase.encode("utf-8")
    salt = bytes(s2k.salt) if s2k.specifier >= String2KeyType.Salted else b""
    unit = salt + secret
    if not unit:
        return String2Key.derive_key(s2k, passphrase)
    count = len(unit)
    if s2k.specifier == String2KeyType.Iterated and s2k.count > len(unit):
        count = s2k.count
    block = unit * max(1, 65536 // len(unit))
    key_len = s2k.encalg.key_size // 8
    derived = b""
    while len(derived) < key_len:
        hasher = s2k.halg.hasher
        hasher.update(b"\0" * (len(derived) // hasher.digest_size))  # one more zero per round
        left = count
        while left >= len(block):
            hasher.update(block)
            left -= len(block)
        hasher.update((unit * (left // len(unit) + 1))[:left])
        derived += hasher.digest()
    return derived[:key_len]


@dataclass
class _SessionAndBody:
    cipher_id: int
    key: bytes
    body: _PacketBody

    def __repr__(self) -> str:
        return f"_SessionAndBody(cipher_id={self.cipher_id})"


def _write_literal(
    stream: _Stream, dst: BinaryIO, budget: _OutputBudget, chunk_size: int
) -> tuple[str, int]:
    """Finds the literal data packet (through compression) and copies its body to dst."""
    compression = "none"
    written = 0
    while True:
        header = _read_header(stream)
        if header is None:
            raise CorruptFileError("the message holds no literal data packet")
        body = _PacketBody(stream, header, chunk_size)
        if header.tag == _COMPRESSED:
            algo = _read_exact(body, 1, "a compressed packet")[0]
            compression = _COMPRESSION_NAMES.get(algo, str(algo))
            stream = _Decompressor(body, algo, budget, chunk_size)
        elif header.tag in (_OPS, _SIG, _MARKER):
            _drain(body, chunk_size)  # signatures are skipped, not verified
        elif header.tag == _LITERAL:
            _read_exact(body, 1, "the literal data header")  # format: b, t, u, ...
            name_len = _read_exact(body, 1, "the literal data header")[0]
            _read_exact(body, name_len + 4, "the literal data header")  # file name, date
            while data := body.read(chunk_size):
                dst.write(data)
                written += len(data)
            break
        else:
            raise CorruptFileError(
                f"the decrypted message holds an unexpected packet (type {header.tag})"
            )
    while (header := _read_header(stream)) is not None:
        if header.tag not in (_SIG, _MARKER):
            raise CorruptFileError(
                f"the decrypted message holds an unexpected packet (type {header.tag}) "
                "after the data"
            )
        _drain(_PacketBody(stream, header, chunk_size), chunk_size)
    return compression, written
