"""Which handler sends which export type."""

from __future__ import annotations

from collections.abc import Callable

from responsys_assets.config import ExportConfig
from responsys_assets.defs.exports.handlers.campaign_trigger import CampaignTriggerHandler
from responsys_assets.defs.exports.handlers.custom_event import CustomEventHandler
from responsys_assets.defs.exports.handlers.pet import PetHandler
from responsys_assets.defs.exports.handlers.profile_list import ProfileListHandler
from responsys_assets.defs.exports.handlers.sftp_file import SftpFileHandler
from responsys_assets.defs.exports.handlers.supplemental_table import SupplementalTableHandler
from responsys_assets.lib.sftp import SFTPSource

HANDLERS = {
    "profile_list": ProfileListHandler,
    "campaign_trigger": CampaignTriggerHandler,
    "custom_event": CustomEventHandler,
    "pet": PetHandler,
    "supplemental_table": SupplementalTableHandler,
    "sftp_file": SftpFileHandler,
}


def handler_for(export: ExportConfig, *, sftp_factory: Callable[[], SFTPSource] | None = None):
    """The handler for an export; `sftp_factory` (a fresh SFTPSource per call) is only used by
    sftp_file exports and profile_list exports with a file_import, which can still be planned
    (dry run) without it."""
    if export.type in ("sftp_file", "profile_list"):
        return HANDLERS[export.type](export, sftp_factory=sftp_factory)
    return HANDLERS[export.type](export)
