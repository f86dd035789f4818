"""The landing zone: downloaded files land here once, immutable, with their sha256.

Remote file names are untrusted, so every name goes through `safe_local_name` before it
touches the disk. Files are written to a temp file in the same folder and moved into place
only when complete, so a reader never sees half a file. A landed file is never overwritten:
if the same name arrives again with other bytes, the new bytes are kept aside under
`.changed/` and `LandedFileChanged` is raised for someone to look at.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from responsys_assets.lib.file_names import UnsafeFileName, safe_local_name

SIDECAR_SUFFIX = ".sha256"
CHANGED_DIR = ".changed"

_CHUNK = 1024 * 1024


class LandedFileChanged(Exception):
    """A file with this name already landed with different bytes; the new bytes were kept aside."""

    def __init__(self, name: str, existing_sha256: str, new_sha256: str, kept_path: Path):
        self.name = name
        self.existing_sha256 = existing_sha256
        self.new_sha256 = new_sha256
        self.kept_path = kept_path
        super().__init__(
            f"{name!r} already landed with sha256 {existing_sha256}, but the new download has "
            f"sha256 {new_sha256}. The landed file was kept unchanged; the new bytes are in "
            f"{kept_path}. Ask the sender why the file changed before loading it."
        )


@dataclass(frozen=True)
class LandedFile:
    name: str
    path: Path
    sha256: str
    size: int


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class LandingWriter:
    """Binary writer handed out by `LandingZone.write`; hashes as it writes."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._digest = hashlib.sha256()
        self.bytes_written = 0
        self.landed: LandedFile | None = None

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._digest.update(data)
        self.bytes_written += len(data)
        return len(data)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


class LandingZone:
    """A local folder of immutable landed files, each with a `<name>.sha256` sidecar."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.exists():
            self.root.mkdir(parents=True, mode=0o700)
            os.chmod(self.root, 0o700)

    def __repr__(self) -> str:
        return f"LandingZone(root={str(self.root)!r})"

    def path_for(self, name: str) -> Path:
        """Local path for a file name (checked with `safe_local_name`)."""
        safe_local_name(name)
        if name.endswith(SIDECAR_SUFFIX):
            raise UnsafeFileName(
                f"Refusing remote file name {name!r}: the suffix {SIDECAR_SUFFIX!r} is reserved "
                "for the landing zone's checksum files."
            )
        return self.root / name

    def _sidecar(self, name: str) -> Path:
        return self.root / (name + SIDECAR_SUFFIX)

    def get(self, name: str) -> LandedFile | None:
        """The landed file of this name, or None if nothing landed yet."""
        path = self.path_for(name)
        if not path.exists():
            return None
        sidecar = self._sidecar(name)
        try:
            digest = sidecar.read_text(encoding="ascii").split()[0]
        except (FileNotFoundError, IndexError):
            # A crash between landing and writing the sidecar: repair it once.
            digest = sha256_file(path)
            self._write_sidecar(name, digest)
        return LandedFile(name=name, path=path, sha256=digest, size=path.stat().st_size)

    @contextmanager
    def write(self, name: str) -> Iterator[LandingWriter]:
        """Write a file atomically; after the block, `writer.landed` is the LandedFile.

        Raises LandedFileChanged (after the block) if other bytes already landed under this name.
        """
        target = self.path_for(name)
        fd, temp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=self.root)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                writer = LandingWriter(f)
                yield writer
                f.flush()
                os.fsync(f.fileno())
            writer.landed = self._land(name, temp, target, writer.sha256, writer.bytes_written)
        finally:
            temp.unlink(missing_ok=True)

    def _land(self, name: str, temp: Path, target: Path, digest: str, size: int) -> LandedFile:
        try:
            # A hard link creates the name only if it does not exist yet: never overwrites.
            os.link(temp, target)
        except FileExistsError:
            existing = self.get(name)
            assert existing is not None
            if existing.sha256 == digest:
                return existing
            kept = self.root / CHANGED_DIR / f"{name}.{digest[:12]}"
            kept.parent.mkdir(mode=0o700, exist_ok=True)
            os.replace(temp, kept)
            raise LandedFileChanged(name, existing.sha256, digest, kept) from None
        self._write_sidecar(name, digest)
        _fsync_dir(self.root)
        return LandedFile(name=name, path=target, sha256=digest, size=size)

    def _write_sidecar(self, name: str, digest: str) -> None:
        sidecar = self._sidecar(name)
        fd, temp_name = tempfile.mkstemp(prefix=f".{sidecar.name}.", suffix=".part", dir=self.root)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            # The `sha256sum -c` format, so a user can verify the zone by hand.
            f.write(f"{digest}  {name}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_name, sidecar)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
