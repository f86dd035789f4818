"""The SFTP file sensor: lists the Connect folder and asks for one run per new file."""

import dagster as dg

from responsys_assets.config import IngestConfig
from responsys_assets.defs.ingest.assets import CHANGED_TAG
from responsys_assets.defs.ingest.partitions import responsys_files
from responsys_assets.defs.ingest.planning import dump_cursor, load_cursor, plan_files
from responsys_assets.keys import SFTP_SENSOR
from responsys_assets.resources import SFTPResource


def evaluate_files(
    sftp: SFTPResource, known: set[str], cursor_text: str | None, settle_seconds: float
):
    with sftp.open() as remote:
        listed = remote.list_ready_files(settle_seconds=settle_seconds)
    return plan_files(listed, known, load_cursor(cursor_text))


def build_sftp_sensor(ingest: IngestConfig, job):
    @dg.sensor(
        name=SFTP_SENSOR,
        job=job,
        minimum_interval_seconds=ingest.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Lists the Responsys Connect SFTP folder; one partition and run per new file.",
    )
    def sftp_file_sensor(context: dg.SensorEvaluationContext, sftp: SFTPResource):
        known = set(context.instance.get_dynamic_partitions(responsys_files.name))
        plan = evaluate_files(sftp, known, context.cursor, ingest.settle_seconds)
        for name, reason in plan.refused.items():
            context.log.warning(f"refused remote file {name}: {reason}")
        for name in plan.changed:
            context.log.warning(f"{name} changed on the server since it was requested; re-checking")
        runs = [
            dg.RunRequest(
                run_key=plan.run_key(remote),
                partition_key=remote.name,
                tags={CHANGED_TAG: "true"} if remote.name in plan.changed else {},
            )
            for remote in plan.to_ingest
        ]
        return dg.SensorResult(
            run_requests=runs,
            dynamic_partitions_requests=(
                [responsys_files.build_add_request(plan.new_partitions)]
                if plan.new_partitions
                else []
            ),
            cursor=dump_cursor(plan.cursor),
            skip_reason=None if runs else f"no new files ({len(plan.cursor)} listed)",
        )

    return sftp_file_sensor
