"""OpenPGP packet framing (RFC 4880 section 4): packet types, old and new packet headers,
partial body lengths, and the chunked streams every layer of decryption pulls through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from responsys_assets.lib.pgp.errors import CorruptFileError

# Packet tags (RFC 4880 / RFC 9580, section 5).
_PKESK, _SIG, _SKESK, _OPS, _COMPRESSED, _SED, _MARKER, _LITERAL, _SEIPD, _AEAD = (
    1,
    2,
    3,
    4,
    8,
    9,
    10,
    11,
    18,
    20,
)
_ENCRYPTED_START_TAGS = {_PKESK, _SKESK, _SED, _SEIPD, _AEAD}
_MAX_SMALL_PACKET = 64 * 1024  # session-key, signature and marker packets are tiny


def _packet_tag(first_byte: int) -> int | None:
    if not first_byte & 0x80:
        return None
    if first_byte & 0x40:
        return first_byte & 0x3F
    return (first_byte >> 2) & 0x0F


# --- chunked readers ------------------------------------------------------------------------
# Each layer pulls chunks from the one below: file -> (armor) -> packet body -> decryption ->
# packet body -> decompression -> packet body -> output. read(n) returns at most n bytes and
# b"" only at the end; nothing ever holds more than a few chunks.


class _Stream:
    """A pull-based byte stream; subclasses produce chunks in `_fill` (b"" at the end)."""

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._eof = False

    def _fill(self) -> bytes:
        raise NotImplementedError

    def read(self, n: int) -> bytes:
        if self._pos >= len(self._buf):
            if self._eof:
                return b""
            chunk = self._fill()
            if not chunk:
                self._eof = True
                return b""
            if len(chunk) <= n:
                return chunk
            self._buf, self._pos = chunk, 0
        out = self._buf[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def peek(self, n: int) -> bytes:
        """Up to n bytes (at most one chunk) without consuming them."""
        if self._pos >= len(self._buf) and not self._eof:
            rest = self._buf[self._pos :]
            chunk = self._fill()
            self._eof = not chunk
            self._buf, self._pos = rest + chunk, 0
        return self._buf[self._pos : self._pos + n]


def _read_exact(stream: _Stream, n: int, what: str) -> bytes:
    parts = []
    while n > 0:
        data = stream.read(n)
        if not data:
            raise CorruptFileError(f"the file ends inside {what}: it is truncated")
        parts.append(data)
        n -= len(data)
    return b"".join(parts)


def _drain(stream: _Stream, chunk_size: int) -> None:
    while stream.read(chunk_size):
        pass


class _FileSource(_Stream):
    def __init__(self, src: BinaryIO, chunk_size: int) -> None:
        super().__init__()
        self._src = src
        self._chunk_size = chunk_size
        self.bytes_in = 0

    def _fill(self) -> bytes:
        data = self._src.read(self._chunk_size)
        self.bytes_in += len(data)
        return data


@dataclass
class _Header:
    tag: int
    length: int | None  # None = up to the end of the enclosing stream
    partial: bool


def _read_length(stream: _Stream, first: int) -> tuple[int, bool]:
    """New-format length: returns (length, is_partial)."""
    if first < 192:
        return first, False
    if first < 224:
        return ((first - 192) << 8) + _read_exact(stream, 1, "a packet length")[0] + 192, False
    if first < 255:
        return 1 << (first & 0x1F), True
    return int.from_bytes(_read_exact(stream, 4, "a packet length"), "big"), False


def _read_header(stream: _Stream) -> _Header | None:
    """The next packet header, or None at the end of the stream."""
    first = stream.read(1)
    if not first:
        return None
    tag = _packet_tag(first[0])
    if tag is None:
        raise CorruptFileError("the data is not OpenPGP (bad packet header)")
    if first[0] & 0x40:
        length, partial = _read_length(stream, _read_exact(stream, 1, "a packet header")[0])
        return _Header(tag, length, partial)
    length_type = first[0] & 0x03
    if length_type == 3:
        return _Header(tag, None, False)
    size = (1, 2, 4)[length_type]
    return _Header(tag, int.from_bytes(_read_exact(stream, size, "a packet header"), "big"), False)


class _PacketBody(_Stream):
    """The body of one packet: fixed length, partial-length chunks, or up to the end."""

    def __init__(self, parent: _Stream, header: _Header, chunk_size: int) -> None:
        super().__init__()
        self._parent = parent
        self._remaining = header.length
        self._partial = header.partial
        self._chunk_size = chunk_size

    def _fill(self) -> bytes:
        parts: list[bytes] = []
        wanted = self._chunk_size
        while wanted > 0:
            if self._remaining is None:
                data = self._parent.read(wanted)
                if not data:
                    break
            elif self._remaining == 0:
                if not self._partial:
                    break
                first = _read_exact(self._parent, 1, "a packet length")[0]
                self._remaining, self._partial = _read_length(self._parent, first)
                continue
            else:
                data = self._parent.read(min(wanted, self._remaining))
                if not data:
                    raise CorruptFileError("the file ends inside a packet: it is truncated")
                self._remaining -= len(data)
            parts.append(data)
            wanted -= len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)


def _read_small_body(body: _PacketBody, what: str) -> bytes:
    parts: list[bytes] = []
    size = 0
    while data := body.read(_MAX_SMALL_PACKET):
        size += len(data)
        if size > _MAX_SMALL_PACKET:
            raise CorruptFileError(f"the {what} packet is implausibly large")
        parts.append(data)
    return b"".join(parts)
