"""Audience assets: profiles and scores, then memberships with their enter/exit history.

Recomputed when new events land (automation condition) and on a schedule, because time-based
rules ("no open for 30 days") change with the clock even when no file arrives.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from responsys_assets.config import ProjectConfig
from responsys_assets.defs.audiences.incremental import update_profiles
from responsys_assets.defs.audiences.memberships import evaluate_audiences
from responsys_assets.defs.audiences.profiles import normalise_as_of, timestamp_literal
from responsys_assets.defs.audiences.rules import AudienceDefinition, rule_input_sql
from responsys_assets.defs.audiences.scores import propensity_calibration, score_deciles
from responsys_assets.keys import EVENTS, FILE_POOLS, MEMBERSHIPS, PROFILES, Pools
from responsys_assets.warehouse.resource import WarehouseResource
from responsys_assets.warehouse.transaction import rollback


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def build_audience_assets(
    config: ProjectConfig, audiences: list[AudienceDefinition], pools: Pools = FILE_POOLS
) -> list:
    every = config.audiences.evaluate_every_minutes
    # Warn after one missed evaluation plus slack; fail after about three (never sooner than
    # the warning: at 1 or 2 minutes three evaluations are shorter than the slack).
    cadence = dg.FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=max(3 * every, every + 10)),
        warn_window=timedelta(minutes=every + 5),
    )

    @dg.asset(
        key=PROFILES,
        deps=[EVENTS],
        group_name="audiences",
        kinds={"duckdb"},
        pool=pools.audiences,
        freshness_policy=cadence,
        # eager() also waits until no dependency is missing, which for a per-file partitioned
        # upstream means every file ever listed: one bad file would hold audiences back forever.
        automation_condition=dg.AutomationCondition.eager().without(
            ~dg.AutomationCondition.any_deps_missing()
        ),
        description="One row per contact with counts, recency, permission and 0-100 scores.",
    )
    def profiles(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        as_of = _now()
        with warehouse.connect() as conn:
            conn.execute("begin transaction")
            try:
                build = update_profiles(conn, as_of)  # incremental when safe, else full
                conn.execute("commit")
            except BaseException:
                rollback(conn)
                raise
            deciles = score_deciles(conn)
            calibration = propensity_calibration(conn)
            suppressed = conn.execute(
                "select count(*) filter (where suppressed) from audiences.profiles"
            ).fetchone()[0]
        context.log.info(
            f"{build.profiles:,} profiles as of {as_of:%Y-%m-%d %H:%M:%S} UTC"
            f" ({build.mode} build: {build.reason})"
        )
        return dg.MaterializeResult(
            metadata={
                "as_of": as_of.isoformat(),
                "profiles": build.profiles,
                "build_mode": build.mode,
                "build_reason": build.reason,
                "rebuilt_profiles": build.rebuilt_profiles,
                "events_read": build.changed_events,
                "suppressed": suppressed,
                "score_deciles": dg.MetadataValue.json(deciles),
                "propensity_calibration": dg.MetadataValue.md(
                    "| bucket | profiles | engaged next 7 d | rate |\n|---|---|---|---|\n"
                    + "\n".join(
                        f"| {c.bucket} | {c.profiles} | {c.engaged_next_7d} | {c.rate:.3f} |"
                        for c in calibration
                    )
                ),
            }
        )

    @dg.asset(
        key=MEMBERSHIPS,
        deps=[PROFILES],
        group_name="audiences",
        kinds={"duckdb"},
        pool=pools.audiences,
        freshness_policy=cadence,
        automation_condition=dg.AutomationCondition.eager(),
        check_specs=[
            dg.AssetCheckSpec("members_satisfy_rules", asset=MEMBERSHIPS),
            dg.AssetCheckSpec("members_have_profiles", asset=MEMBERSHIPS),
            dg.AssetCheckSpec("sizes_stable", asset=MEMBERSHIPS),
        ],
        description="Current audience members and the append-only ENTER/EXIT history.",
    )
    def memberships(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        with warehouse.connect() as conn:
            as_of = (
                conn.execute("select max(as_of) from audiences.profiles").fetchone()[0] or _now()
            )
            result = evaluate_audiences(conn, audiences, as_of)
            checks = audience_checks(conn, result, audiences, config.audiences.size_swing_warning)
        metadata: dict = {
            "evaluation_id": result.evaluation_id,
            "as_of": str(result.as_of),
            "entered": sum(a.entered for a in result.audiences.values()),
            "exited": sum(a.exited for a in result.audiences.values()),
        }
        for name, stats in sorted(result.audiences.items()):
            metadata[f"size/{name}"] = stats.size  # Dagster plots numeric metadata over time
        metadata["audiences"] = dg.MetadataValue.md(
            "| audience | size | entered | exited |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {n} | {s.size} | {s.entered} | {s.exited} |"
                for n, s in sorted(result.audiences.items())
            )
        )
        return dg.MaterializeResult(metadata=metadata, check_results=checks)

    return [profiles, memberships]


def members_violating_rules(conn, audiences, as_of) -> dict[str, int]:
    """Members whose profile does not satisfy their audience's rule at evaluation time."""
    literal = timestamp_literal(normalise_as_of(as_of))
    violations = {}
    for definition in audiences:
        count = conn.execute(
            f"""
            select count(*) from audiences.memberships m
            where m.audience = ? and m.contact_key not in (
                select contact_key from ({rule_input_sql()})
                where as_of = {literal} and ({definition.rule}\n))
            """,
            [definition.name],
        ).fetchone()[0]
        if count:
            violations[definition.name] = count
    return violations


def audience_checks(conn, result, audiences, swing: float) -> list[dg.AssetCheckResult]:
    violations = members_violating_rules(conn, audiences, result.as_of)
    orphans = conn.execute(
        """
        select m.audience, count(*) from audiences.memberships m
        left join audiences.profiles p using (contact_key)
        where p.contact_key is null group by 1
        """
    ).fetchall()
    previous = dict(
        conn.execute(
            """
            select audience, size from audiences.evaluation_audiences
            where evaluation_id = (select max(evaluation_id) from audiences.evaluation_audiences
                                   where evaluation_id < ?)
            """,
            [result.evaluation_id],
        ).fetchall()
    )
    swings = {}
    for name, stats in result.audiences.items():
        before = previous.get(name)
        if before and abs(stats.size - before) / before > swing:
            swings[name] = f"{before} -> {stats.size}"
    return [
        dg.AssetCheckResult(
            check_name="members_satisfy_rules",
            passed=not violations,
            metadata={"violations": dg.MetadataValue.json(violations)},
        ),
        dg.AssetCheckResult(
            check_name="members_have_profiles",
            passed=not orphans,
            metadata={"members_without_profile": dg.MetadataValue.json(dict(orphans))},
        ),
        dg.AssetCheckResult(
            check_name="sizes_stable",
            passed=not swings,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"threshold": swing, "swings": dg.MetadataValue.json(swings)},
        ),
    ]
