-- The audiences each contact is in, one row per member contact (audiences.memberships grouped by
-- contact). An evaluation compares every contact's new row with this one and diffs memberships
-- only for the contacts that differ, instead of joining every (audience, contact) pair.
-- Kept by memberships.py in the same transaction as audiences.memberships; rebuilt from it when
-- they disagree (a first evaluation after this migration, or a direct write to memberships).
create table if not exists audiences.contact_audiences (
    contact_key  varchar not null,
    audiences    varchar[],        -- sorted names; null marks a row to re-diff
    riid         bigint,
    email        varchar,
    suppressed   boolean
);

-- The checksum of audiences.memberships each evaluation left (memberships.MEMBERSHIPS_CHECKSUM),
-- so the next one can tell whether audiences.contact_audiences still describes them.
alter table audiences.evaluations add column if not exists memberships_checksum ubigint;
