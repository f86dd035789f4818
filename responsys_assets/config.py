"""The YAML config that analytics engineers edit: ingest options, audiences and exports.

Everything is validated when definitions load, so a typo fails before any run, with a message
naming the key, the export or the audience concerned.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
MAX_EXTRA_FIELDS = 29  # Responsys/Lytics: up to 29 extra fields or memberships per PET/trigger


class ConfigError(Exception):
    """The YAML config is invalid; the message names the file and every problem found."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestConfig(_Strict):
    delimiter: Literal[",", ";", "\t", "|"] | None = None  # None: sniffed from the header
    timezone: str = "UTC"  # the account's time zone, in which Connect writes dates
    ready_suffix: str | None = None  # e.g. ".ready" when the Connect job writes ready files
    settle_seconds: float = Field(default=2.0, ge=0, le=600)
    sensor_interval_seconds: int = Field(default=3600, ge=30)
    contacts_feed: str = Field(default="CONTACTS", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    # ^ file-name token of a profile-list (contacts) export file

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value


class AudienceConfig(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    rule: str = Field(min_length=1)


class AudiencesConfig(_Strict):
    include_ready_made: bool = True
    definitions: list[AudienceConfig] = []
    evaluate_every_minutes: Literal[1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60] = 10
    size_swing_warning: float = Field(default=0.5, gt=0)  # share of size change that warns


MatchColumn = Literal["RIID", "CUSTOMER_ID", "EMAIL_ADDRESS", "EMAIL_SHA256_HASH"]


class MergeRuleConfig(_Strict):
    insert_on_no_match: bool = True
    update_on_match: Literal["REPLACE_ALL", "NO_UPDATE"] = "REPLACE_ALL"
    match_column_1: MatchColumn = "RIID"
    match_column_2: MatchColumn | None = None
    default_permission_status: Literal["OPTIN", "OPTOUT"] = "OPTOUT"
    optin_value: str = "I"
    optout_value: str = "O"

    @model_validator(mode="after")
    def _hash_rules(self) -> MergeRuleConfig:
        columns = {self.match_column_1, self.match_column_2} - {None}
        if "EMAIL_SHA256_HASH" in columns and len(columns) > 1 and "EMAIL_ADDRESS" in columns:
            raise ValueError("EMAIL_SHA256_HASH cannot be combined with EMAIL_ADDRESS")
        if "EMAIL_SHA256_HASH" in columns and self.insert_on_no_match:
            raise ValueError(
                "a hash match can only update: set insert_on_no_match: false "
                "(Responsys cannot insert a contact from a hash)"
            )
        if self.match_column_2 == self.match_column_1:
            raise ValueError("match_column_2 must differ from match_column_1")
        return self


MAX_RECONCILE_SAMPLE = 100  # one minute of a test account's 100/min Retrieve budget


class ReconcileConfig(_Strict):
    """Read back a sample of what an export wrote and compare it (check `matches_responsys`)."""

    sample: int = Field(default=20, ge=0, le=MAX_RECONCILE_SAMPLE)  # records per run; 0 = off


class _ExportBase(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    audience: str
    enabled: bool = True
    backfill: bool = True  # on the first run, send the audience's current members
    async_api: bool = False
    cron: str | None = None  # overrides the type's default cadence
    # destination key (e.g. list) -> profile column whose non-empty value replaces it per record
    destination_override: dict[str, str] = {}
    DESTINATION_KEYS: ClassVar[tuple[str, ...]] = ()  # the keys destination_override accepts

    @model_validator(mode="after")
    def _overridable(self) -> _ExportBase:
        unknown = sorted(set(self.destination_override) - set(self.DESTINATION_KEYS))
        if unknown:
            allowed = ", ".join(self.DESTINATION_KEYS) or "none: it has no destination name"
            raise ValueError(
                f"destination_override: {', '.join(unknown)} cannot be overridden in a "
                f"{self.type} export (allowed: {allowed})"
            )
        return self


class FileImportConfig(_Strict):
    """Hybrid transport: a run above `threshold` records goes as one file (file_import.py)."""

    remote_dir: str = Field(min_length=1)  # the folder the Connect import job reads
    threshold: int = Field(ge=1)  # records to send above which the run goes as a file
    file_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    encrypt_to_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


def _one_to_max(kind: str, items) -> None:
    if not items:
        raise ValueError(f"needs at least one {kind}")
    if len(items) > MAX_EXTRA_FIELDS:
        raise ValueError(f"at most {MAX_EXTRA_FIELDS} {kind}s (got {len(items)})")


class UserFieldsPetConfig(_Strict):
    """Extra profile fields of a profile list export, merged into a PET (list_pets.py)."""

    name: str = "RA_USER_FIELDS"
    folder: str | None = None  # where a missing PET is created; default: the export's folder
    fields: dict[str, str]  # PET column -> profile column
    field_type: Literal["STR500", "STR4000"] = "STR500"

    @field_validator("fields")
    @classmethod
    def _few(cls, value: dict[str, str]) -> dict[str, str]:
        _one_to_max("field", value)
        return value


class SegmentsPetConfig(_Strict):
    """Audience memberships as PET columns, one per audience, named after it (list_pets.py)."""

    name: str = "RA_SEGMENTS"
    folder: str | None = None
    audiences: list[str]
    member_value: str = "true"
    non_member_value: str = "false"
    field_type: Literal["STR500", "STR4000"] = "STR500"

    @model_validator(mode="after")
    def _shape(self) -> SegmentsPetConfig:
        _one_to_max("audience", self.audiences)
        dupes = sorted({a for a in self.audiences if self.audiences.count(a) > 1})
        if dupes:
            raise ValueError(f"audiences listed twice: {', '.join(dupes)}")
        if self.member_value == self.non_member_value:
            raise ValueError("member_value and non_member_value must differ")
        return self


class ProfileListExport(_ExportBase):
    DESTINATION_KEYS = ("list",)
    type: Literal["profile_list"]
    list: str
    folder: str
    merge_rule: MergeRuleConfig = MergeRuleConfig()
    on_exit: Literal["delete", "clear_column", "keep"] = "delete"
    membership_column: str | None = None  # needed when on_exit is clear_column
    fields: dict[str, str] = {}  # Responsys list column -> profile column
    reconcile: ReconcileConfig = ReconcileConfig()
    file_import: FileImportConfig | None = None  # large runs as one file (file_import.py)
    user_fields_pet: UserFieldsPetConfig | None = None  # side PETs of the list (list_pets.py)
    segments_pet: SegmentsPetConfig | None = None

    @model_validator(mode="after")
    def _shape(self) -> ProfileListExport:
        if self.on_exit == "clear_column" and not self.membership_column:
            raise ValueError("on_exit: clear_column needs membership_column")
        extras = [
            key for key in ("file_import", "user_fields_pet", "segments_pet") if getattr(self, key)
        ]
        if extras and self.destination_override:
            raise ValueError(
                f"{', '.join(extras)} write to the export's own list and cannot be combined "
                "with destination_override; use a second export for the other list"
            )
        pets = [p.name.lower() for p in (self.user_fields_pet, self.segments_pet) if p]
        if len(set(pets)) < len(pets):
            raise ValueError("user_fields_pet and segments_pet need different PET names")
        return self


class CampaignTriggerExport(_ExportBase):
    DESTINATION_KEYS = ("campaign",)
    type: Literal["campaign_trigger"]
    campaign: str
    list: str
    folder: str
    merge_rule: MergeRuleConfig = MergeRuleConfig()
    optional_data: dict[str, str] = {}  # personalisation name -> profile column
    backfill: bool = False  # a campaign should not email the whole audience by default

    @field_validator("optional_data")
    @classmethod
    def _few(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_EXTRA_FIELDS:
            raise ValueError(f"at most {MAX_EXTRA_FIELDS} optional_data fields")
        return value


class CustomEventExport(_ExportBase):
    DESTINATION_KEYS = ("event", "list", "folder")
    type: Literal["custom_event"]
    event: str
    list: str
    folder: str
    identify_by: Literal["riid", "email_sha256", "customer_id"] = "riid"
    properties: dict[str, str] = {}  # event property -> profile column
    send_exits: bool = True
    send_updates: bool = False  # callType UPDATE when a member's properties change (opt-in)


class PetExport(_ExportBase):
    DESTINATION_KEYS = ("pet", "list", "folder")
    type: Literal["pet"]
    list: str
    folder: str
    pet: str
    mode: Literal["fields", "membership"] = "fields"
    fields: dict[str, str] = {}  # PET column -> profile column
    field_type: Literal["STR500", "STR4000"] = "STR500"
    reconcile: ReconcileConfig = ReconcileConfig()


class SupplementalTableExport(_ExportBase):
    DESTINATION_KEYS = ("table", "folder")
    type: Literal["supplemental_table"]
    folder: str
    table: str
    primary_key: list[str] = ["RIID", "CAMPAIGN_ID"]
    source_column: str = "CAMPAIGN_ID"  # identifies which export/audience wrote each row
    fields: dict[str, str] = {}
    reconcile: ReconcileConfig = ReconcileConfig()


class SftpFileExport(_ExportBase):
    type: Literal["sftp_file"]
    remote_dir: str  # the folder the Connect import job reads (never the one we ingest from)
    file_prefix: str | None = None
    fields: dict[str, str] = {"RIID_": "riid", "EMAIL_ADDRESS_": "email"}
    encrypt_to_env: str | None = None  # env var holding an armored PGP public key


ExportConfig = Annotated[
    ProfileListExport
    | CampaignTriggerExport
    | CustomEventExport
    | PetExport
    | SupplementalTableExport
    | SftpFileExport,
    Field(discriminator="type"),
]

DEFAULT_CRON = {
    "profile_list": "*/10 * * * *",
    "campaign_trigger": "* * * * *",
    "custom_event": "*/10 * * * *",
    "pet": "*/10 * * * *",
    "supplemental_table": "*/10 * * * *",
    "sftp_file": "0 * * * *",
}


class ProjectConfig(_Strict):
    account_id: str = "10001"
    ingest: IngestConfig = IngestConfig()
    audiences: AudiencesConfig = AudiencesConfig()
    exports: list[ExportConfig] = []

    @model_validator(mode="after")
    def _unique_and_linked(self) -> ProjectConfig:
        for kind, names in (
            ("audience", [a.name for a in self.audiences.definitions]),
            ("export", [e.name for e in self.exports]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} names: {', '.join(dupes)}")
        return self


def export_cron(export: ExportConfig) -> str:
    return export.cron or DEFAULT_CRON[export.type]


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"] if not re.fullmatch(r"[a-z_]+\[.*\]", str(p)))
        lines.append(f"  - {where or '(top level)'}: {item['msg']}")
    return "\n".join(lines)


def parse_config(text: str, source: str = "<config>") -> ProjectConfig:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid config:\n{_describe(exc)}") from None


def load_config(path: Path) -> ProjectConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {str(path)!r}: {exc.strerror}") from None
    return parse_config(text, source=str(path))
