"""What every export handler offers the runner, and the optional capabilities, spelled out.

A handler knows one export type's API calls; `runner.py` owns what all types share. Optional
capabilities have defaults here, so the runner asks `handler.sends_updates` rather than
probing for attributes, and a new handler type sees everything it may provide in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from responsys_assets.defs.exports.changes import PendingChange
    from responsys_assets.defs.exports.file_import import FileImport
    from responsys_assets.defs.exports.ledger import Batch
    from responsys_assets.defs.exports.runner import ExportReport


@dataclass
class SendOutcome:
    """What a handler reports for one batch."""

    sent_fields: dict[str, dict] = field(default_factory=dict)  # contact_key -> fields written
    removed: list[str] = field(default_factory=list)  # contact_keys removed in Responsys
    rejected: list[tuple[str, int | None, str, str]] = field(default_factory=list)
    api_calls: int = 0


class ExportHandler:
    """Base of every export type's handler: required members raise, optional ones default."""

    export: object  # the export's config; a destination's handler holds a copy naming it
    idempotent: ClassVar[bool]  # may a batch with an unknown outcome be sent again?

    # Optional: does an EXIT mean a call (a removal) for this export?
    sends_exits: bool = False
    # Optional: UPDATEs for current members whose `update_fields` changed since the last send.
    sends_updates: bool = False
    # Optional: may a large run travel as one Connect file (file_import.py)? Such handlers
    # report the transport each run chose; `file_import` is None when none is configured.
    chooses_transport: ClassVar[bool] = False
    file_import: FileImport | None = None

    def prepare(self, client) -> None:
        """Create or check destination objects (PETs, tables) before sending to them."""

    def fields_for(self, change: PendingChange) -> dict:
        """The record as it would be written to Responsys (used by sends and dry runs)."""
        raise NotImplementedError

    def send(self, client, batch: Batch) -> SendOutcome:
        raise NotImplementedError

    def update_fields(self, change: PendingChange) -> dict:
        """With `sends_updates`: the fields whose change makes an UPDATE for a current member."""
        raise NotImplementedError

    def follow_up(self, conn, client, report: ExportReport) -> None:
        """Work after the batches of a run that went well (profile lists' side PETs)."""
