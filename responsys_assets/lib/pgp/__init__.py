"""OpenPGP for Responsys files: streaming decryption of what Connect sends us (`Decryptor`) and
encryption of what we send (`encrypt_bytes`). The modules below are internal; import from here.
"""

from __future__ import annotations

from responsys_assets.lib.pgp.decrypt import (
    DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_RATIO,
    Decryptor,
    DecryptStats,
    is_pgp_file,
)
from responsys_assets.lib.pgp.encrypt import encrypt_bytes
from responsys_assets.lib.pgp.errors import CorruptFileError, DecryptError, WrongKeyError

__all__ = [
    "DEFAULT_MAX_OUTPUT_BYTES",
    "DEFAULT_MAX_RATIO",
    "CorruptFileError",
    "DecryptError",
    "DecryptStats",
    "Decryptor",
    "WrongKeyError",
    "encrypt_bytes",
    "is_pgp_file",
]
