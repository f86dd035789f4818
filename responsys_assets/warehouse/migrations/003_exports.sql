-- Per-record bookkeeping of exports: which audience change went out in which batch.
-- A (export, contact_key, change_id) row exists from just before its batch is sent; with the
-- batch's ledger outcome it tells a resumed run what must never be sent again.
create table if not exists exports.sent_records (
    export       varchar not null,
    contact_key  varchar not null,
    change_id    bigint not null,
    change       varchar not null,          -- ENTER | EXIT | UPDATE
    batch_id     varchar not null
    -- key: (export, contact_key, change_id), unique by how we write it (DuckLake has no constraints)
);

-- What was last written to Responsys per record, for dry-run diffs and reconciliation.
create table if not exists exports.last_sent (
    export       varchar not null,
    contact_key  varchar not null,
    fields       json,
    sent_at      timestamp not null
    -- key: (export, contact_key), unique by how we write it (DuckLake has no constraints)
);
