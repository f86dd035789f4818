-- The audiences layer: profiles, behavioural scores, propensity calibration and per-evaluation sizes.
-- profiles, scores and propensity_calibration are rebuilt as of an evaluation time by
-- responsys_assets/audiences/profiles.sql and scores.sql (create or replace, same columns as here);
-- they exist from the start so audience rules can be validated before the first build.
-- Column meanings: docs/scores.md. Idempotent: every statement can run again.

-- One row per contact, as of `as_of` (only events captured at or before it count).
create table if not exists audiences.profiles (
    contact_key            varchar not null,  -- 'riid:<n>' | 'cust:<customer id>' | 'email:<sha256>'
    riid                   bigint,
    customer_id            varchar,
    email                  varchar,           -- trimmed, lower-cased
    email_sha256           varchar,           -- sha256 hex of email, Responsys EMAIL_SHA256_HASH_
    first_seen_at          timestamp,
    last_seen_at           timestamp,
    sends                  bigint not null,
    opens                  bigint not null,
    clicks                 bigint not null,
    bounces                bigint not null,
    conversions            bigint not null,
    complaints             bigint not null,
    opens_7d               bigint not null,
    opens_30d              bigint not null,
    opens_90d              bigint not null,
    clicks_7d              bigint not null,
    clicks_30d             bigint not null,
    clicks_90d             bigint not null,
    conversions_30d        bigint not null,
    conversions_90d        bigint not null,
    engagements_14d        bigint not null,   -- opens + clicks in (as_of - 14 d, as_of]
    engagements_prev_14d   bigint not null,   -- opens + clicks in (as_of - 28 d, as_of - 14 d]
    engaged_days_30d       integer not null,  -- distinct 24 h periods with an open or click, last 30
    engaged_weeks_12w      integer not null,  -- distinct 7-day periods with an open or click, last 12
    last_sent_at           timestamp,
    last_open_at           timestamp,
    last_click_at          timestamp,
    last_conversion_at     timestamp,
    last_bounce_at         timestamp,
    last_hard_bounce_at    timestamp,
    last_complaint_at      timestamp,
    last_engaged_at        timestamp,         -- latest open or click
    email_permission       varchar,           -- OPTIN | OPTOUT | null (no fact known)
    permission_changed_at  timestamp,
    hard_bounced           boolean not null,
    complained             boolean not null,
    suppressed             boolean not null,  -- opted out or hard bounced or complained
    prior_last_engaged_at  timestamp,         -- latest open or click at or before as_of - 7 d
    prior_engagements_30d  bigint not null,   -- opens + clicks in (as_of - 37 d, as_of - 7 d]
    as_of                  timestamp not null
);

-- Behavioural scores 0-100 per contact, as of `as_of` (docs/scores.md).
create table if not exists audiences.scores (
    contact_key        varchar not null,
    engagement_bucket  varchar not null,
    quantity_score     integer not null,
    frequency_score    integer not null,
    recency_score      integer not null,
    intensity_score    integer not null,
    momentum_score     integer not null,
    consistency_score  integer not null,
    propensity_score   integer,           -- null when the account has no history a week before as_of
    as_of              timestamp not null
);

-- How propensity was calibrated: per engagement bucket at as_of - 7 d, who engaged in the next 7 d.
create table if not exists audiences.propensity_calibration (
    bucket            varchar not null,
    profiles          bigint not null,
    engaged_next_7d   bigint not null,
    rate              double not null,     -- engaged_next_7d / profiles
    propensity_score  integer not null,    -- 100 * smoothed rate, what profiles in the bucket get now
    as_of             timestamp not null
);

-- Exports must not mail suppressed contacts: flag them on memberships and their changes.
alter table audiences.memberships add column if not exists suppressed boolean;
alter table audiences.membership_changes add column if not exists suppressed boolean;

-- Size and churn of every audience at every evaluation (the size-over-time plot and audits).
create table if not exists audiences.evaluation_audiences (
    evaluation_id  bigint not null,
    audience       varchar not null,
    rule           varchar,                -- null when the audience was removed from the config
    size           bigint not null,
    suppressed     bigint not null,
    entered        bigint not null,
    exited         bigint not null
    -- key: (evaluation_id, audience), unique by how we write it (DuckLake has no constraints)
);
