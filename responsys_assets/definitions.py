"""The one Definitions object: loaded by workspace.yaml, `dagster dev` and the CLI alike."""

from __future__ import annotations

import logging
import os

import dagster as dg

from responsys_assets.audiences.assets import AUDIENCE_ASSET_KEYS, build_audience_assets
from responsys_assets.config import ProjectConfig, export_cron, load_config
from responsys_assets.exports.assets import build_export_assets, export_key
from responsys_assets.ingest.assets import EVENTS, LANDED_FILES, build_ingest_assets
from responsys_assets.ingest.checks import FEEDS_STILL_ARRIVING, build_ingest_checks
from responsys_assets.ingest.partitions import responsys_files
from responsys_assets.ingest.sensors import INGEST_JOB, build_sftp_sensor
from responsys_assets.resources.connections import (
    PGPResource,
    ResponsysAPIResource,
    SFTPResource,
)
from responsys_assets.resources.warehouse import WarehouseResource
from responsys_assets.settings import Settings, load_settings
from responsys_assets.validation import validate_project

log = logging.getLogger("responsys_assets")

AUDIENCES_JOB = "audiences_job"


def _optional_env(name: str):
    """An EnvVar for an optional variable that is set, else None (EnvVar fails when unset)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_resources(settings: Settings, config: ProjectConfig) -> dict:
    warehouse = WarehouseResource(
        path=str(settings.warehouse_path), landing_dir=str(settings.landing_dir)
    )
    if settings.is_sandbox:
        sandbox = str(settings.sandbox_dir)
        return {
            "warehouse": warehouse,
            "sftp": SFTPResource(sandbox_dir=sandbox, ready_suffix=config.ingest.ready_suffix),
            "pgp": PGPResource(sandbox_dir=sandbox),
            "responsys": ResponsysAPIResource(sandbox_dir=sandbox),
        }
    port = (
        {"port": dg.EnvVar.int("RESPONSYS_SFTP_PORT")}
        if os.environ.get("RESPONSYS_SFTP_PORT")
        else {}
    )
    return {
        "warehouse": warehouse,
        "sftp": SFTPResource(
            host=dg.EnvVar("RESPONSYS_SFTP_HOST"),
            username=dg.EnvVar("RESPONSYS_SFTP_USERNAME"),
            private_key=dg.EnvVar("RESPONSYS_SFTP_PRIVATE_KEY"),
            known_hosts=dg.EnvVar("RESPONSYS_SFTP_KNOWN_HOSTS"),
            remote_dir=dg.EnvVar("RESPONSYS_SFTP_REMOTE_DIR"),
            ready_suffix=config.ingest.ready_suffix,
            **port,
        ),
        "pgp": PGPResource(
            private_key=_optional_env("RESPONSYS_PGP_PRIVATE_KEY"),
            passphrase=_optional_env("RESPONSYS_PGP_PASSPHRASE"),
        ),
        "responsys": ResponsysAPIResource(
            endpoint=dg.EnvVar("RESPONSYS_ENDPOINT"),
            username=dg.EnvVar("RESPONSYS_USERNAME"),
            password=dg.EnvVar("RESPONSYS_PASSWORD"),
        ),
    }


def audiences_cron(minutes: int) -> str:
    return "0 * * * *" if minutes == 60 else f"*/{minutes} * * * *"


def build_definitions(
    settings: Settings | None = None, config: ProjectConfig | None = None
) -> dg.Definitions:
    settings = settings or load_settings()
    config = config or load_config(settings.config_path)
    audiences = validate_project(config)
    if settings.is_sandbox:
        log.info(
            "No RESPONSYS_* connection variable is set: using the embedded sandbox in %s",
            settings.sandbox_dir,
        )

    ingest_assets = build_ingest_assets(config.ingest)
    ingest_job = dg.define_asset_job(
        INGEST_JOB,
        # The cross-file freshness check runs on its own schedule, not once per file.
        selection=dg.AssetSelection.assets(LANDED_FILES, EVENTS)
        - dg.AssetSelection.checks(FEEDS_STILL_ARRIVING),
        partitions_def=responsys_files,
        description="Land, decrypt, parse and load one Connect file (one partition per file).",
    )
    audience_assets = build_audience_assets(config, audiences)
    audiences_job = dg.define_asset_job(
        AUDIENCES_JOB,
        selection=dg.AssetSelection.assets(*AUDIENCE_ASSET_KEYS),
        description="Recompute profiles, scores and audience memberships.",
    )
    export_assets = build_export_assets(config)
    feed_check_job = dg.define_asset_job(
        "feed_arrival_check_job",
        selection=dg.AssetSelection.checks(FEEDS_STILL_ARRIVING),
        description="Flags a feed whose files stopped arriving.",
    )
    jobs: list = [ingest_job, audiences_job, feed_check_job]
    schedules = [
        dg.ScheduleDefinition(
            name="feed_arrival_check_schedule",
            job=feed_check_job,
            cron_schedule="30 * * * *",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Hourly: warn after ~7 h and fail after ~13 h without a file per feed.",
        ),
        dg.ScheduleDefinition(
            name="audiences_schedule",
            job=audiences_job,
            cron_schedule=audiences_cron(config.audiences.evaluate_every_minutes),
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Time-based audiences change with the clock: re-evaluate regularly.",
        ),
    ]
    for export in config.exports:
        if not export.enabled:
            continue
        job = dg.define_asset_job(
            f"export_{export.name}_job",
            selection=dg.AssetSelection.assets(export_key(export.name)),
            description=f"Run the {export.type} export '{export.name}'.",
        )
        jobs.append(job)
        schedules.append(
            dg.ScheduleDefinition(
                name=f"export_{export.name}_schedule",
                job=job,
                cron_schedule=export_cron(export),
                default_status=dg.DefaultScheduleStatus.RUNNING,
            )
        )
    automation = dg.AutomationConditionSensorDefinition(
        "audiences_on_new_events",
        target=dg.AssetSelection.assets(*AUDIENCE_ASSET_KEYS),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Re-evaluates audiences when new events land.",
    )
    return dg.Definitions(
        assets=[*ingest_assets, *audience_assets, *export_assets],
        asset_checks=build_ingest_checks(),
        jobs=jobs,
        schedules=schedules,
        sensors=[build_sftp_sensor(config.ingest, ingest_job), automation],
        resources=build_resources(settings, config),
    )


defs = build_definitions()
