-- Read-backs of exports: after a run, a sample of what the export wrote is retrieved from
-- Responsys and compared with exports.last_sent (what we last wrote) and the exits we sent.
-- One row per export run; `details` names drifted records by Responsys key (RIID, primary key),
-- never by email, with the fields that differ.
create table if not exists exports.reconciliations (
    export          varchar not null,
    run_id          varchar not null,      -- the Dagster run that exported and read back
    checked_at      timestamp not null,    -- UTC
    sample_size     integer not null,      -- configured `reconcile.sample`
    checked         integer not null,      -- records read back
    matched         integer not null,
    missing         integer not null,      -- sent, not found in Responsys
    differing       integer not null,      -- found, some field differs from what we sent
    still_present   integer not null,      -- deleted on exit, still found in Responsys
    unread          integer not null,      -- sampled but not read (the read-back stopped)
    stopped_by      varchar,               -- why the read-back stopped early, if it did
    details         json                  -- [{record, contact_key, status, fields:[...]}]
    -- key: (export, run_id), unique by how we write it (DuckLake has no constraints)
);
