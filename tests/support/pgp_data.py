"""Plaintext for the PGP tests (Connect-like CSV bytes) and in-memory decryption of a message."""

from __future__ import annotations

import io
import random

from responsys_assets.lib.pgp import Decryptor


def connect_csv(size: int, seed: int = 7) -> bytes:
    """Connect-like event rows (compressible, but not trivially)."""
    rng = random.Random(seed)
    rows = [b"EVENT_TYPE_ID,ACCOUNT_ID,RIID,EMAIL_ADDRESS_,EVENT_CAPTURED_DT,CAMPAIGN_ID\n"]
    total = len(rows[0])
    while total < size:
        row = (
            f"{rng.choice((1, 4, 6))},{rng.randint(1000, 9999)},{rng.randint(10**6, 10**9)},"
            f"user{rng.randint(0, 10**6)}@example.com,23-NOV-2026 {rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:00,{rng.randint(1, 999)}\n"
        ).encode()
        rows.append(row)
        total += len(row)
    return b"".join(rows)[:size]


def decrypt_bytes(decryptor: Decryptor, data: bytes, **kw: object) -> bytes:
    """The plaintext of an OpenPGP message held in memory (Decryptor.decrypt_stream)."""
    out = io.BytesIO()
    decryptor.decrypt_stream(io.BytesIO(data), out, **kw)  # type: ignore[arg-type]
    return out.getvalue()
