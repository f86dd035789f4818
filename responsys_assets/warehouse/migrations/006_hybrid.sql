-- Hybrid transport and a profile list export's side PETs (exports/file_import.py, list_pets.py).

-- A run that went as one file for a Connect import job instead of REST calls. The row is written
-- before its ledger batch is settled and the upload happens after, so a killed run leaves either
-- an unsettled batch whose file was never uploaded (discarded, its records planned again) or a
-- settled batch whose file is uploaded, same name and same bytes, before anything else is sent.
create table if not exists exports.file_batches (
    export       varchar not null,
    batch_id     varchar not null,        -- the exports.ledger batch ('file-...')
    file_name    varchar not null,
    remote_dir   varchar not null,
    records      bigint not null,         -- data rows in the file
    bytes        bigint not null,
    sha256       varchar not null,        -- of the file as uploaded (encrypted when encrypted)
    content      blob,                    -- the file, kept until the upload is confirmed
    created_at   timestamp not null,
    uploaded_at  timestamp
    -- key: (export, batch_id), unique by how we write it (DuckLake has no constraints)
);

-- What a profile list export last merged into each of its side PETs, per contact: the state
-- the next run compares with to find the rows it still owes.
create table if not exists exports.pet_rows_sent (
    export       varchar not null,
    pet          varchar not null,        -- PET name, upper-cased
    contact_key  varchar not null,
    fields       json,                    -- columns and values written
    change_id    bigint,                  -- segments PET: the newest listed-audience change it reflects
    sent_at      timestamp not null
    -- key: (export, pet, contact_key), unique by how we write it (DuckLake has no constraints)
);
