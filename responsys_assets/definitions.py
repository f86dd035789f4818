"""The one Definitions object: loaded by workspace.yaml, `dagster dev` and the CLI alike.

Wiring only. The environment is chosen here, once: production resources fed from `EnvVar`s,
or the embedded sandbox's when no connection variable is set. Nothing below this module asks.
"""

from __future__ import annotations

import logging
import os

import dagster as dg

from responsys_assets.config import ProjectConfig, export_cron, load_config
from responsys_assets.defs.audiences.assets import build_audience_assets
from responsys_assets.defs.exports.assets import build_export_assets
from responsys_assets.defs.ingest.assets import build_ingest_assets
from responsys_assets.defs.ingest.checks import build_ingest_checks
from responsys_assets.defs.ingest.partitions import responsys_files
from responsys_assets.defs.ingest.sensors import build_sftp_sensor
from responsys_assets.keys import (
    AUDIENCE_ASSET_KEYS,
    AUDIENCES_JOB,
    AUDIENCES_SCHEDULE,
    AUDIENCES_SENSOR,
    EVENTS,
    FEED_CHECK_CRON,
    FEED_CHECK_JOB,
    FEED_CHECK_SCHEDULE,
    FEED_DEADLINES,
    FEEDS_STILL_ARRIVING,
    INGEST_JOB,
    LANDED_FILES,
    audiences_cron,
    export_job,
    export_key,
    export_schedule,
    pools_for,
)
from responsys_assets.resources import PGPResource, ResponsysAPIResource, SFTPResource
from responsys_assets.settings import (
    WAREHOUSE_PASSWORD_VAR,
    LakeWarehouse,
    Settings,
    load_settings,
)
from responsys_assets.validation import validate_project
from responsys_assets.warehouse.resource import WarehouseResource

log = logging.getLogger("responsys_assets")


def _optional_env(name: str):
    """An EnvVar for an optional variable that is set, else None (EnvVar fails when unset)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def production_resources(config: ProjectConfig) -> dict:
    """The Responsys account named by the RESPONSYS_* variables (read as EnvVars, never logged)."""
    port = (
        {"port": dg.EnvVar.int("RESPONSYS_SFTP_PORT")}
        if os.environ.get("RESPONSYS_SFTP_PORT")
        else {}
    )
    return {
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


def sandbox_resources(settings: Settings, config: ProjectConfig) -> dict:
    """The embedded sandbox's SFTP server, PGP key and API emulator."""
    from responsys_assets.sandbox.resources import sandbox_resources as resources

    return resources(settings.sandbox_dir, config.ingest.ready_suffix)


def warehouse_resource(settings: Settings) -> WarehouseResource:
    """The DuckDB file, or the DuckLake with its catalog password as an EnvVar."""
    warehouse = settings.warehouse
    return WarehouseResource(
        location=warehouse.location,
        data_path=warehouse.data_path if isinstance(warehouse, LakeWarehouse) else None,
        password=_optional_env(WAREHOUSE_PASSWORD_VAR),
        landing_dir=str(settings.landing_dir),
    )


def build_resources(settings: Settings, config: ProjectConfig) -> dict:
    """The warehouse, plus production or sandbox connections: the one place that chooses."""
    warehouse = warehouse_resource(settings)
    if settings.is_sandbox:
        connections = sandbox_resources(settings, config)
    else:
        connections = production_resources(config)
    return {"warehouse": warehouse, **connections}


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

    pools = pools_for(isinstance(settings.warehouse, LakeWarehouse))
    ingest_assets = build_ingest_assets(config.ingest, pools)
    ingest_job = dg.define_asset_job(
        INGEST_JOB,
        # The cross-file freshness check runs on its own schedule, not once per file.
        selection=dg.AssetSelection.assets(LANDED_FILES, EVENTS)
        - dg.AssetSelection.checks(FEEDS_STILL_ARRIVING),
        partitions_def=responsys_files,
        description="Land, decrypt, parse and load one Connect file (one partition per file).",
    )
    audience_assets = build_audience_assets(config, audiences, pools)
    audiences_job = dg.define_asset_job(
        AUDIENCES_JOB,
        selection=dg.AssetSelection.assets(*AUDIENCE_ASSET_KEYS),
        description="Recompute profiles, scores and audience memberships.",
    )
    export_assets = build_export_assets(config, pools)
    feed_check_job = dg.define_asset_job(
        FEED_CHECK_JOB,
        selection=dg.AssetSelection.checks(FEEDS_STILL_ARRIVING),
        description="Flags a feed whose files stopped arriving.",
    )
    jobs: list = [ingest_job, audiences_job, feed_check_job]
    schedules = [
        dg.ScheduleDefinition(
            name=FEED_CHECK_SCHEDULE,
            job=feed_check_job,
            cron_schedule=FEED_CHECK_CRON,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"Hourly: {FEED_DEADLINES} without a file per feed.",
        ),
        dg.ScheduleDefinition(
            name=AUDIENCES_SCHEDULE,
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
            export_job(export.name),
            selection=dg.AssetSelection.assets(export_key(export.name)),
            description=f"Run the {export.type} export '{export.name}'.",
        )
        jobs.append(job)
        schedules.append(
            dg.ScheduleDefinition(
                name=export_schedule(export.name),
                job=job,
                cron_schedule=export_cron(export),
                default_status=dg.DefaultScheduleStatus.RUNNING,
            )
        )
    automation = dg.AutomationConditionSensorDefinition(
        AUDIENCES_SENSOR,
        target=dg.AssetSelection.assets(*AUDIENCE_ASSET_KEYS),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Re-evaluates audiences when new events land.",
    )
    return dg.Definitions(
        assets=[*ingest_assets, *audience_assets, *export_assets],
        asset_checks=build_ingest_checks(config.ingest, pools),
        jobs=jobs,
        schedules=schedules,
        sensors=[build_sftp_sensor(config.ingest, ingest_job), automation],
        resources=build_resources(settings, config),
    )


defs = build_definitions()
