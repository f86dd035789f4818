"""Whole-project checks that run when definitions load, before any run can start.

Pydantic checks each key; this module checks what spans keys: audience rules against the
profile columns, exports against audiences, and every Responsys name against Responsys' rules.
"""

from __future__ import annotations

import dagster as dg
import duckdb

from responsys_assets.config import ConfigError, ProjectConfig
from responsys_assets.defs.audiences.rules import (
    AudienceDefinition,
    AudienceRuleError,
    load_ready_made,
    rule_columns,
    validate_rules,
)
from responsys_assets.defs.exports.naming import (
    SYSTEM_COLUMNS,
    InvalidResponsysName,
    validate_field_name,
    validate_folder_name,
    validate_object_name,
)
from responsys_assets.warehouse import apply_migrations


def audience_definitions(config: ProjectConfig) -> list[AudienceDefinition]:
    """Ready-made audiences (unless turned off) plus the config's; the config's win on name."""
    mine = [AudienceDefinition(a.name, a.description, a.rule) for a in config.audiences.definitions]
    names = {a.name for a in mine}
    ready = load_ready_made() if config.audiences.include_ready_made else []
    return [a for a in ready if a.name not in names] + mine


def _export_names(export) -> list[tuple[str, str, str]]:
    """(kind, name, checker) for every Responsys name an export declares."""
    out: list[tuple[str, str, str]] = []
    for attr, kind in (
        ("list", "list"),
        ("pet", "PET"),
        ("table", "supplemental table"),
        ("campaign", "campaign"),
        ("event", "custom event"),
    ):
        value = getattr(export, attr, None)
        if value:
            out.append((kind, value, "object"))
    if getattr(export, "folder", None):
        out.append(("folder", export.folder, "folder"))
    for attr in ("fields", "optional_data", "properties"):
        for column in (getattr(export, attr, None) or {}).keys():
            out.append(("field", column, "field"))
    for column in getattr(export, "primary_key", None) or []:
        out.append(("field", column, "field"))
    for column in (
        getattr(export, "membership_column", None),
        getattr(export, "source_column", None),
    ):
        if column:
            out.append(("field", column, "field"))
    return out


def _side_pet_problems(export, known: set[str], columns: set[str]) -> list[str]:
    """A profile list's user_fields_pet and segments_pet: names, profile columns, audiences."""
    problems: list[str] = []
    checks: list[tuple[str, str, str]] = []  # (where, PET column, what the column holds)
    for key in ("user_fields_pet", "segments_pet"):
        pet = getattr(export, key, None)
        if pet is None:
            continue
        where = f"export '{export.name}' {key}"
        try:
            validate_object_name(pet.name, kind="PET", where=where)
            if pet.folder:
                validate_folder_name(pet.folder, where=where)
        except InvalidResponsysName as exc:
            problems.append(str(exc))
        if key == "user_fields_pet":
            for column, source in pet.fields.items():
                checks.append((where, column, ""))
                if source not in columns:
                    problems.append(
                        f"{where}: fields.{column} reads profile column '{source}', which does "
                        "not exist (see docs/scores.md for the profile and score columns)"
                    )
        else:
            for audience in pet.audiences:
                hint = f" (the column of audience '{audience}' is its name upper-cased)"
                checks.append((where, audience.upper(), hint))
                if audience not in known:
                    problems.append(
                        f"{where}: audiences lists '{audience}', which is not defined "
                        f"(known: {', '.join(sorted(known))})"
                    )
    for where, column, hint in checks:
        if column.upper() in SYSTEM_COLUMNS:
            problems.append(
                f"{where}: {column} is a Responsys system column; PET rows are keyed by RIID_ "
                "or EMAIL_ADDRESS_ by themselves, so use another name"
            )
            continue
        try:
            validate_field_name(column, where=where)
        except InvalidResponsysName as exc:
            problems.append(f"{exc}{hint}")
    return problems


def validate_project(config: ProjectConfig) -> list[AudienceDefinition]:
    """Raise ConfigError listing every problem; return the audience definitions in force."""
    problems: list[str] = []
    audiences = audience_definitions(config)
    with duckdb.connect(":memory:") as scratch:  # the warehouse schema, without the data
        apply_migrations(scratch)
        columns = set(rule_columns(scratch))
        try:
            validate_rules(scratch, audiences)
        except AudienceRuleError as exc:
            problems.append(str(exc))
    known = {a.name for a in audiences}
    for export in config.exports:
        where = f"export '{export.name}'"
        if export.audience not in known:
            problems.append(
                f"{where}: audience '{export.audience}' is not defined "
                f"(known: {', '.join(sorted(known))})"
            )
        for mapping in ("fields", "optional_data", "properties"):
            for target, source in (getattr(export, mapping, None) or {}).items():
                if source not in columns and not source.startswith("_"):
                    problems.append(
                        f"{where}: {mapping}.{target} reads profile column '{source}', which "
                        "does not exist (see docs/scores.md for the profile and score columns)"
                    )
        for key, source in export.destination_override.items():
            if source not in columns:
                problems.append(
                    f"{where}: destination_override.{key} reads profile column '{source}', "
                    "which does not exist (see docs/scores.md for the profile and score columns)"
                )
        if export.type == "profile_list":
            problems.extend(_side_pet_problems(export, known, columns))
        if export.cron and not is_valid_cron(export.cron):
            problems.append(f"{where}: cron {export.cron!r} is not a valid cron schedule")
        for kind, name, checker in _export_names(export):
            try:
                if checker == "folder":
                    validate_folder_name(name, where=where)
                elif checker == "field":
                    validate_field_name(name, where=where)
                else:
                    validate_object_name(name, kind=kind, where=where)
            except InvalidResponsysName as exc:
                problems.append(str(exc))
    if problems:
        raise ConfigError("invalid config:\n" + "\n".join(f"  - {p}" for p in problems))
    return audiences


def is_valid_cron(cron: str) -> bool:
    """Whether Dagster accepts `cron` as a schedule (its public check, without private imports)."""
    try:
        dg.ScheduleDefinition(name="cron_check", cron_schedule=cron, job_name="cron_check")
    except dg.DagsterInvalidDefinitionError:
        return False
    return True
