"""The errors decryption raises, kept apart so every layer (armor, packets, decryption) can
raise them without importing the others."""

from __future__ import annotations


class DecryptError(Exception):
    """A file could not be decrypted; the message says which file, why and what to do."""


class WrongKeyError(DecryptError):
    """The file is encrypted to keys we do not hold."""


class CorruptFileError(DecryptError):
    """The file is truncated, modified or not OpenPGP data at all."""
