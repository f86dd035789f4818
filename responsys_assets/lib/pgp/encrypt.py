"""OpenPGP encryption, PGP's other half: files we send to Responsys (encrypted exports) and the
sandbox's sample Connect files, encrypted with pgpy to the recipient's public key."""

from __future__ import annotations

import warnings

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    # pgpy 0.6.0 references cipher classes that cryptography moved to "decrepit".
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from pgpy import PGPKey, PGPMessage
    from pgpy.constants import CompressionAlgorithm, SymmetricKeyAlgorithm


def encrypt_bytes(public_key_armored: str, data: bytes, compress: bool = True) -> bytes:
    """Encrypts data to the key (AES-256, ZLIB or no compression) as a binary OpenPGP message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        key, _ = PGPKey.from_blob(public_key_armored)
        compression = CompressionAlgorithm.ZLIB if compress else CompressionAlgorithm.Uncompressed
        message = PGPMessage.new(data, compression=compression)
        return bytes(key.encrypt(message, cipher=SymmetricKeyAlgorithm.AES256))
