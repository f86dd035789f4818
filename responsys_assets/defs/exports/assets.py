"""One asset per configured export, each materialising what changed into Responsys."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from responsys_assets.config import ExportConfig, ProjectConfig, export_cron
from responsys_assets.defs.exports import ledger
from responsys_assets.defs.exports.handlers.registry import handler_for
from responsys_assets.defs.exports.read_back import read_back, reconciles, record, warehouse_now
from responsys_assets.defs.exports.reconcile import ReconcileResult
from responsys_assets.defs.exports.runner import run_export
from responsys_assets.keys import FILE_POOLS, MEMBERSHIPS, RECONCILE_CHECK, Pools, export_key
from responsys_assets.resources import ResponsysAPIResource, SFTPResource
from responsys_assets.warehouse.resource import WarehouseResource


class ExportRunConfig(dg.Config):
    dry_run: bool = False  # show what would change, call nothing that writes


class ExportFailed(Exception):
    """An export stopped before sending everything; the message says why and what next."""


def _freshness(export: ExportConfig) -> dg.FreshnessPolicy:
    """Warn after one missed tick plus slack, fail after about three missed ticks."""
    every = cron_interval(export_cron(export))
    return dg.FreshnessPolicy.time_window(
        fail_window=3 * every + timedelta(minutes=1), warn_window=every + timedelta(minutes=1)
    )


_TICK_FORMAT = "%Y-%m-%d-%H:%M"


def cron_interval(cron: str) -> timedelta:
    """The shortest gap between two ticks of a cron string, over its next day of ticks.

    The ticks come from Dagster's public partitions API (a cron-scheduled time window per
    tick), looking further ahead only for crons that tick less than daily.
    """
    now = datetime.now(UTC).replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=1)
    for ahead in (timedelta(hours=26), timedelta(days=32), timedelta(days=367)):
        keys = dg.TimeWindowPartitionsDefinition(
            start=now.strftime(_TICK_FORMAT), fmt=_TICK_FORMAT, cron_schedule=cron, timezone="UTC"
        ).get_partition_keys(current_time=(now + ahead).replace(tzinfo=UTC))
        ticks = [datetime.strptime(key, _TICK_FORMAT) for key in keys[:1501]]
        within_a_day = sum(1 for tick in ticks if tick - ticks[0] <= timedelta(days=1))
        if len(ticks) > within_a_day or len(ticks) == 1501:
            ticks = ticks[: within_a_day + 1]
            return min(later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False))
    return timedelta(days=366)


def _reconcile_check(result: ReconcileResult | None, skipped: str = "") -> dg.AssetCheckResult:
    """WARN, not ERROR: drift usually means someone edited Responsys after we wrote (a marketer,
    another integration), which the pipeline did not cause and cannot undo by failing."""
    if result is None:
        return dg.AssetCheckResult(
            check_name=RECONCILE_CHECK,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{skipped}: nothing was read back",
            metadata={"reconcile_checked": 0},
        )
    drifted = result.summary()
    description = (
        f"{result.checked} records read back, all match"
        if result.passed
        else f"{len(result.drifted)} of {result.checked} records differ from what was sent"
        + (f"; read-back stopped: {result.stopped_by}" if result.stopped_by else "")
    )
    return dg.AssetCheckResult(
        check_name=RECONCILE_CHECK,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            **result.metadata(),
            "drifted_records": drifted,
            "details": dg.MetadataValue.json(result.details()),
            "what_to_do": "these records were changed in Responsys after the export wrote them; "
            "exports.reconciliations keeps each run's findings. The next change of a contact "
            "writes it again.",
        },
    )


def build_export_asset(export: ExportConfig, config: ProjectConfig, pools: Pools = FILE_POOLS):
    key = export_key(export.name)
    checks = [dg.AssetCheckSpec("no_batch_with_unknown_outcome", asset=key)]
    if reconciles(export):
        checks.append(
            dg.AssetCheckSpec(
                RECONCILE_CHECK,
                asset=key,
                description="a sample of what the export wrote, read back from Responsys, "
                "matches what was sent",
            )
        )

    @dg.asset(
        key=key,
        deps=[MEMBERSHIPS],
        group_name="exports",
        kinds={"responsys"},
        pool=pools.export(export.name),
        freshness_policy=_freshness(export),
        check_specs=checks,
        description=(
            f"{export.type} export of audience '{export.audience}' ({export_cron(export)})."
        ),
        tags={"responsys/export_type": export.type},
    )
    def export_asset(
        context: dg.AssetExecutionContext,
        config: ExportRunConfig,
        warehouse: WarehouseResource,
        responsys: ResponsysAPIResource,
        sftp: SFTPResource,
    ):
        if responsys.mode == "sandbox":
            context.log.info("sending to the embedded sandbox (no RESPONSYS_* variable is set)")
        handler = handler_for(export, sftp_factory=sftp.open)
        reconciled = None
        not_reconciled = "dry run, nothing was written"
        with warehouse.connect() as conn, responsys.client() as client:
            since = warehouse_now(conn)
            report = run_export(
                conn,
                client,
                name=export.name,
                audience=export.audience,
                handler=handler,
                backfill=export.backfill,
                triggers=export.type == "campaign_trigger",
                dry_run=config.dry_run,
                log=context.log.debug,
            )
            parked = ledger.unknown_batches(conn, export.name)
            if not config.dry_run and not report.batches:
                # Keeps a run with no changes free of API calls (reads are paced at ~100/min).
                not_reconciled = "this run wrote nothing"
            elif reconciles(export) and report.ok and not config.dry_run:
                reconciled = read_back(
                    conn, client, export, handler, since=since, seed=context.run_id
                )
                record(conn, reconciled, context.run_id)
        stats = client.stats.snapshot() if hasattr(client, "stats") else {}
        metadata = report.metadata() | {
            "mode": responsys.mode,
            "dry_run": config.dry_run,
            "client": stats,
        }
        if config.dry_run:
            metadata["plan_preview"] = dg.MetadataValue.json(report.planned[:50])
            context.log.info(
                f"dry run of {export.name}: {report.added} upserts, {report.removed} removals, "
                f"{report.triggered} triggers"
            )
        check = dg.AssetCheckResult(
            check_name="no_batch_with_unknown_outcome",
            passed=not parked,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "unknown_batches": [f"{b[1]} ({b[2]} records)" for b in parked][:20],
                "what_to_do": "check in Responsys whether these went out, then run "
                "`responsys-assets release EXPORT BATCH --resend` or `--mark-sent`",
            },
        )
        if reconciled is not None:
            metadata |= reconciled.metadata()
            if not reconciled.passed:
                context.log.warning(
                    f"{export.name}: Responsys differs from what was sent: "
                    + "; ".join(reconciled.summary()[:10])
                )
        for warning in report.warnings:  # also in metadata["warnings"]
            context.log.warning(f"{export.name}: {warning}")
        if not report.ok:
            context.log.error(f"{export.name}: {report.stopped_by}")
            yield check
            raise ExportFailed(
                f"export '{export.name}' stopped: {report.stopped_by}. Batches already sent are "
                "in exports.ledger and will not be sent again; re-run to resume."
            )
        results = [check]
        if reconciles(export):
            results.append(_reconcile_check(reconciled, not_reconciled))
        yield dg.MaterializeResult(metadata=metadata, check_results=results)

    return export_asset


def build_export_assets(config: ProjectConfig, pools: Pools = FILE_POOLS) -> list:
    return [build_export_asset(e, config, pools) for e in config.exports if e.enabled]
