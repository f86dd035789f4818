"""Which remote files to ingest: a pure function the sensor and the CLI share.

Dedupe by name (one partition per file) and by the file's size and mtime as last seen, so that
a file replaced on the server under the same name is requested again and then reported by the
landing zone as changed instead of being merged silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from responsys_assets.lib.file_names import UnsafeFileName, safe_local_name
from responsys_assets.lib.sftp import RemoteFile


@dataclass
class FilePlan:
    new_partitions: list[str] = field(default_factory=list)
    to_ingest: list[RemoteFile] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # repr(name) -> reason
    cursor: dict[str, str] = field(default_factory=dict)

    def run_key(self, remote: RemoteFile) -> str:
        return f"{remote.name}:{fingerprint(remote)}"


def fingerprint(remote: RemoteFile) -> str:
    return f"{remote.size}:{remote.mtime}"


def valid_partition_key(name: str) -> bool:
    """Dagster refuses keys with '...' or control characters; our landing zone refuses more."""
    try:
        safe_local_name(name)
    except UnsafeFileName:
        return False
    return "..." not in name


def plan_files(
    listed: list[RemoteFile], known_partitions: set[str], cursor: dict[str, str]
) -> FilePlan:
    """Decide what to ingest. `cursor` maps file name -> fingerprint last requested."""
    plan = FilePlan()
    for remote in sorted(listed, key=lambda r: r.name):
        if not valid_partition_key(remote.name):
            try:
                safe_local_name(remote.name)
                plan.refused[repr(remote.name)] = "name not usable as a partition key"
            except UnsafeFileName as exc:
                plan.refused[repr(remote.name)] = str(exc)
            continue
        seen = cursor.get(remote.name)
        now = fingerprint(remote)
        plan.cursor[remote.name] = now
        if remote.name not in known_partitions:
            plan.new_partitions.append(remote.name)
            plan.to_ingest.append(remote)
        elif seen is None:
            # A known partition the cursor never saw (e.g. added by another path): request it;
            # the asset itself skips a file whose checksum is already loaded.
            plan.to_ingest.append(remote)
        elif seen != now:
            plan.changed.append(remote.name)
            plan.to_ingest.append(remote)
    return plan


def load_cursor(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def dump_cursor(cursor: dict[str, str]) -> str:
    return json.dumps(cursor, sort_keys=True, separators=(",", ":"))
