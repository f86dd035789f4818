-- The warehouse contract: schemas and tables that every layer, the notebooks and outside checks rely on.
-- Idempotent: every statement can run again on an up-to-date database.
-- One dialect for a DuckDB file and a DuckLake: no PRIMARY KEY, UNIQUE or sequences (DuckLake has
-- none). A column marked "key" is unique because every write of it is a MERGE or a delete and
-- insert in one transaction (warehouse/upsert.py); tests check it on both backends. Warehouses
-- created before this had the constraints, which stay and are never relied on.

create schema if not exists responsys;
create schema if not exists audiences;
create schema if not exists exports;

-- One row per remote file we have seen: the exactly-once manifest.
-- status: loaded | failed | skipped (unknown feed)
create table if not exists responsys.ingested_files (
    file_name       varchar not null,      -- key; the remote name, also the Dagster partition key
    feed            varchar,               -- CLICK, SMS_CLICK, LAUNCH_STATE ... (null when unknown)
    sha256          varchar,               -- of the file as downloaded (encrypted bytes if PGP)
    size_bytes      bigint,
    encrypted       boolean,
    status          varchar not null,
    row_count       bigint,                -- data rows loaded
    rejected_count  bigint,                -- data rows rejected into responsys.rejected_rows
    error           varchar,               -- why a failed file failed
    landed_path     varchar,               -- path inside the landing zone
    ingested_at     timestamp not null,    -- UTC
    seconds         double
);

-- Every engagement event of every feed. event_type comes from the feed token of the file name.
-- Columns that are not common to all feeds, and the account's custom columns, live in `attributes`.
create table if not exists responsys.events (
    event_type        varchar not null,
    riid              bigint,
    customer_id       varchar,
    email             varchar,
    account_id        bigint,
    list_id           bigint,
    campaign_id       bigint,
    launch_id         bigint,
    event_captured_at timestamp,           -- UTC
    event_stored_at   timestamp,           -- UTC
    attributes        json,                -- feed-specific and custom columns, by header name
    source_file       varchar not null,
    source_line       bigint not null      -- physical line in the decrypted file, header = 1
);

-- Rows that broke their feed's contract, kept with the reason so nothing is lost.
create table if not exists responsys.rejected_rows (
    source_file  varchar not null,
    source_line  bigint,
    reason       varchar not null,
    raw          varchar
);

-- LAUNCH_STATE feed: the lookup of campaign and launch names for reporting.
create table if not exists responsys.launch_states (
    account_id          bigint,
    list_id             bigint,
    campaign_id         bigint,
    launch_id           bigint,
    campaign_name       varchar,
    launch_name         varchar,
    launch_status       varchar,
    launch_type         varchar,
    subject             varchar,
    event_captured_at   timestamp,
    event_stored_at     timestamp,
    launch_started_at   timestamp,
    launch_completed_at timestamp,
    attributes          json,
    source_file         varchar not null,
    source_line         bigint not null
);

-- Contacts from a profile-list export file (optional): latest permission status per contact.
create table if not exists responsys.contacts (
    riid                     bigint,
    customer_id              varchar,
    email                    varchar,
    email_permission_status  varchar,      -- I | O
    modified_at              timestamp,    -- UTC; when the permission fact was true
    attributes               json,
    source_file              varchar not null,
    source_line              bigint not null
);

-- One row per audience evaluation: the clock that memberships and exports read.
create table if not exists audiences.evaluations (
    evaluation_id  bigint not null,  -- key
    as_of          timestamp not null,     -- the evaluation time rules are relative to (UTC)
    started_at     timestamp not null,
    finished_at    timestamp
);

-- Current members of each audience.
create table if not exists audiences.memberships (
    audience       varchar not null,
    contact_key    varchar not null,       -- stable contact identity (see audiences.profiles)
    riid           bigint,
    email          varchar,
    entered_at     timestamp not null,
    evaluation_id  bigint not null
);

-- Every ENTER / EXIT, append-only; exports read "what changed since my last export" from here.
create table if not exists audiences.membership_changes (
    change_id      bigint not null,        -- increasing; exports keep a watermark on it
    audience       varchar not null,
    contact_key    varchar not null,
    riid           bigint,
    email          varchar,
    change         varchar not null,       -- ENTER | EXIT
    changed_at     timestamp not null,
    evaluation_id  bigint not null
);

-- Every batch an export sends: the exactly-once record.
-- outcome: pending (written before the call) | succeeded | failed | unknown (sent, no answer) | released
create table if not exists exports.ledger (
    export         varchar not null,
    batch_id       varchar not null,       -- deterministic from export + the changes it carries
    first_change   bigint,
    last_change    bigint,
    records        integer not null,
    attempt        integer not null,
    outcome        varchar not null,
    error_class    varchar,
    error          varchar,
    api_calls      integer,
    started_at     timestamp not null,
    finished_at    timestamp
    -- key: (export, batch_id), unique by how we write it (DuckLake has no constraints)
);

-- Records Responsys refused, row by row, with its message.
create table if not exists exports.rejected_records (
    export         varchar not null,
    batch_id       varchar not null,
    contact_key    varchar,
    riid           bigint,
    error_class    varchar not null,
    message        varchar not null,
    rejected_at    timestamp not null
);

-- Per export: the membership_changes watermark of the last fully exported change.
create table if not exists exports.watermarks (
    export         varchar not null,  -- key
    last_change_id bigint not null,
    updated_at     timestamp not null
);
