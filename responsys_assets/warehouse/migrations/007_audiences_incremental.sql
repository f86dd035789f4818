-- Incremental audience builds (responsys_assets/audiences/incremental.py). A build of profiles and
-- scores records what it read, so the next one can merge only what changed since, or knows it must
-- rebuild in full. audiences.contact_aggregates, the per-contact sums and maxima the profiles are
-- derived from, is created by the first full build (aggregates.sql). Idempotent.

-- The last build: one row.
create table if not exists audiences.build_state (
    as_of         timestamp not null,   -- the build's evaluation time (UTC)
    mode          varchar not null,     -- full | incremental
    reason        varchar not null,     -- why that mode
    code_version  varchar not null,     -- hash of the build SQL: another version rebuilds in full
    events        bigint not null,      -- rows in responsys.events when built
    contacts      bigint not null,      -- rows in responsys.contacts when built
    anonymous     boolean not null,     -- rows without a RIID existed (identity resolution needs a full build)
    built_at      timestamp not null
);

-- The loaded files (responsys.ingested_files) the last build had read, with their load time: a file
-- loaded since is new, one reloaded or removed since forces a full build.
create table if not exists audiences.build_files (
    file_name    varchar not null,  -- key
    ingested_at  timestamp not null
);
