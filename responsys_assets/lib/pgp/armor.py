"""ASCII armor (RFC 4880 section 6): telling an armored message apart, and decoding its base64
body chunk by chunk. The armor checksum is not checked; the MDC covers integrity."""

from __future__ import annotations

import binascii

from responsys_assets.lib.pgp.errors import CorruptFileError
from responsys_assets.lib.pgp.packets import _MAX_SMALL_PACKET, _Stream

_ARMOR_BEGIN = b"-----BEGIN PGP MESSAGE-----"
_ARMOR_END = b"-----END PGP MESSAGE-----"


def _is_armored(head: bytes) -> bool:
    """Whether the start of a file is an armored message (leading whitespace allowed)."""
    return head.lstrip().startswith(_ARMOR_BEGIN)


class _Dearmor(_Stream):
    """Decodes an ASCII-armored message chunk by chunk (base64 between the armor lines)."""

    def __init__(self, source: _Stream, chunk_size: int) -> None:
        super().__init__()
        self._source = source
        self._chunk_size = chunk_size
        self._text = b""  # raw armor text not yet decoded
        self._quad = b""  # base64 characters left over from the last chunk (< 4)
        self._in_body = False
        self._done = False

    def _skip_armor_headers(self) -> None:
        """Skips to the base64 body: past the BEGIN line and any "Key: value" header lines."""
        while True:
            begin = self._text.find(_ARMOR_BEGIN)
            pos = self._text.find(b"\n", begin) + 1 if begin >= 0 else 0
            while pos > 0:
                line_end = self._text.find(b"\n", pos)
                if line_end < 0:
                    break  # need more text
                line = self._text[pos:line_end].strip()
                if not line:
                    self._text = self._text[line_end + 1 :]
                    return
                if b":" not in line:  # no blank line after BEGIN: the body starts here
                    self._text = self._text[pos:]
                    return
                pos = line_end + 1
            if len(self._text) > _MAX_SMALL_PACKET:
                raise CorruptFileError("the armored file has no readable message header")
            data = self._source.read(self._chunk_size)
            if not data:
                raise CorruptFileError("the armored file ends before the message starts")
            self._text += data

    def _require_end_line(self, rest: bytes) -> None:
        while _ARMOR_END not in rest:
            more = self._source.read(self._chunk_size)
            if not more or len(rest) > _MAX_SMALL_PACKET:
                raise CorruptFileError("the armored file has no END line: it is truncated")
            rest += more

    def _fill(self) -> bytes:
        if not self._in_body:
            self._skip_armor_headers()
            self._in_body = True
        while not self._done:
            text = self._text + self._source.read(self._chunk_size)
            # Base64 lines never start with "=" (that is the checksum line) and never hold "-".
            ends = [p for p in (text.find(b"\n="), text.find(b"-")) if p >= 0]
            if ends:
                body, self._text, self._done = text[: min(ends)], b"", True
                self._require_end_line(text[min(ends) :])
            elif len(text) == len(self._text):
                raise CorruptFileError("the armored file has no END line: it is truncated")
            else:  # keep the last byte: it may be the newline before the checksum line
                body, self._text = text[:-1], text[-1:]
            data = self._quad + body.translate(None, b" \t\r\n")
            usable = len(data) if self._done else len(data) - len(data) % 4
            self._quad = data[usable:]
            try:
                decoded = binascii.a2b_base64(data[:usable], strict_mode=True)
            except binascii.Error:
                raise CorruptFileError("the armored file holds invalid base64") from None
            if decoded:
                return decoded
        return b""
