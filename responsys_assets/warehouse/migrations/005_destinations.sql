-- Per-record destinations (`destination_override`) and custom-event UPDATEs.
-- A destination is a JSON object of the names a record was sent to, e.g.
-- {"folder": "Exports", "list": "VIP_A"} (responsys_assets/exports/destinations.py).
-- Idempotent: every statement can run again.

-- Every batch goes to exactly one destination; null for batches that made no call.
alter table exports.ledger add column if not exists destination json;

-- Where the record's last write went: exits and UPDATEs follow the member there.
alter table exports.last_sent add column if not exists destination json;

-- Exports with destination_override: the destination each record was given when its batch was
-- begun. A batch that may have reached Responsys (interrupted, outcome unknown, released for
-- resend) is resent to the same place even if the profile column has changed since; only a
-- batch Responsys certainly refused (`failed`) drops its rows, so its records are resolved
-- again. change_id is the sent_records key: the membership change, or for an UPDATE the
-- negative id exports/changes.py derives for it.
create table if not exists exports.record_destinations (
    export       varchar not null,
    contact_key  varchar not null,
    change_id    bigint not null,
    batch_id     varchar not null,
    destination  json not null
    -- key: (export, contact_key, change_id), unique by how we write it (DuckLake has no constraints)
);
