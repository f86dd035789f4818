"""Where a record goes: the export's configured names, or a profile column's value per record.

`destination_override: {list: preferred_list}` sends each record to the list named by its
profile's `preferred_list`, and to the configured `list` when that value is null or empty. A
destination is the dict of every name the export type uses (`{"list": ..., "folder": ...}`).

A value Responsys would refuse as a name (exports/naming.py) rejects that record alone; the
runner records it in exports.rejected_records and sends the rest. Each destination is sent by
its own copy of the export's handler, whose config carries the resolved names, so the handlers
need not know that overrides exist.
"""

from __future__ import annotations

import copy
import json

from responsys_assets.defs.exports.naming import (
    InvalidResponsysName,
    validate_folder_name,
    validate_object_name,
)
from responsys_assets.defs.exports.records import as_text

Destination = dict[str, str]

# destination key -> the object kind named in messages
KINDS = {
    "list": "list",
    "pet": "PET",
    "table": "supplemental table",
    "campaign": "campaign",
    "event": "custom event",
    "folder": "folder",
}


class InvalidDestination(ValueError):
    """A record's override value is not a name Responsys accepts; only that record is refused."""


def configured(export) -> Destination:
    """The destination named in the export's config."""
    return {key: getattr(export, key) for key in export.DESTINATION_KEYS}


def resolve(export, contact_key: str, profile: dict) -> Destination:
    """The record's destination: each overridden name from its profile column when non-empty."""
    destination = configured(export)
    for key, column in export.destination_override.items():
        value = as_text(profile.get(column)).strip()
        if not value:
            continue
        kind = KINDS[key]
        try:
            if key == "folder":
                validate_folder_name(value, where="")
            else:
                validate_object_name(value, kind=kind, where="")
        except InvalidResponsysName as exc:
            raise InvalidDestination(
                f"export '{export.name}': record {contact_key}: destination_override.{key} "
                f"reads {column} = {value!r}, which is not a valid {kind} name ({exc.reason}); "
                "the record was not sent"
            ) from None
        destination[key] = value
    return destination


def to_json(destination: Destination) -> str:
    return json.dumps(destination, sort_keys=True)


def describe(destination: Destination) -> str:
    """`list=VIP_A, folder=Exports`, for logs and dry runs."""
    return ", ".join(f"{key}={value}" for key, value in destination.items())


def routed(handler, destination: Destination):
    """The handler to send `destination` with: itself, or a copy whose config names it.

    Make every copy before sending anything, so a copy starts from the handler's fresh state
    (e.g. the supplemental-table handler remembers that its table exists).
    """
    if not destination or destination == configured(handler.export):
        return handler
    twin = copy.copy(handler)
    twin.export = handler.export.model_copy(update=destination)
    return twin
