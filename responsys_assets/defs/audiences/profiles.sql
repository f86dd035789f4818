-- audiences.profiles rows as of {as_of}, derived from the per-contact aggregates in {aggregates}
-- (aggregates.sql, built for {as_of} or merged up to it by incremental.py). Only what a contact's
-- own aggregates say goes in, so a subset of contacts can be re-derived alone.
-- The day/week masks are re-based from the day they were built on (mask_day) to as_of's day.
-- Column meanings: docs/scores.md.
with rebased as (
    select
        *,
        epoch_us({as_of}) // 86400000000 - mask_day as day_shift,
        (epoch_us({as_of}) // 86400000000 + 3) // 7 - mask_week as week_shift
    from {aggregates}
),
permissioned as (
    select
        *,
        greatest(last_open_at, last_click_at) as last_engaged_at,
        greatest(last_opt_in_at, last_opt_out_at) as opt_at,
        contact_permission_fact.at as contact_permission_at,
        -- the most recent fact wins; on a tie the contacts file (the list's own state) wins, and
        -- between events an opt-out beats an opt-in at the same instant
        case
            when contact_permission_fact.at is not null
                and (greatest(last_opt_in_at, last_opt_out_at) is null
                     or contact_permission_fact.at >= greatest(last_opt_in_at, last_opt_out_at))
                then contact_permission_fact.permission
            when last_opt_out_at >= last_opt_in_at or last_opt_in_at is null and last_opt_out_at is not null
                then 'OPTOUT'
            when last_opt_in_at is not null then 'OPTIN'
        end as email_permission,
        greatest(contact_permission_fact.at, last_opt_in_at, last_opt_out_at) as permission_changed_at,
        case when day_shift >= 30 then 0
             else bit_count((engaged_days_mask << day_shift::integer) & ((1::ubigint << 30) - 1)) end
            as engaged_days_30d,
        case when week_shift >= 12 then 0
             else bit_count((engaged_weeks_mask << week_shift::integer) & ((1::ubigint << 12) - 1)) end
            as engaged_weeks_12w
    from rebased
),
flagged as (
    select
        *,
        -- a hard bounce stops counting once the address is seen working again (an open or click)
        coalesce(last_hard_bounce_at > last_engaged_at, last_hard_bounce_at is not null) as hard_bounced,
        -- a complaint stops counting once the contact opts in again after it
        last_complaint_at is not null
            and not coalesce(email_permission = 'OPTIN' and permission_changed_at > last_complaint_at, false)
            as complained
    from permissioned
)
select
    contact_key,
    riid,
    nullif(trim(latest_customer_id), '') as customer_id,
    nullif(lower(trim(latest_email)), '') as email,
    sha256(nullif(lower(trim(latest_email)), '')) as email_sha256,
    first_seen_at,
    last_seen_at,
    sends,
    opens,
    clicks,
    bounces,
    conversions,
    complaints,
    opens_7d,
    opens_30d,
    opens_90d,
    clicks_7d,
    clicks_30d,
    clicks_90d,
    conversions_30d,
    conversions_90d,
    engagements_14d,
    engagements_prev_14d,
    engaged_days_30d::integer as engaged_days_30d,
    engaged_weeks_12w::integer as engaged_weeks_12w,
    last_sent_at,
    last_open_at,
    last_click_at,
    last_conversion_at,
    last_bounce_at,
    last_hard_bounce_at,
    last_complaint_at,
    last_engaged_at,
    email_permission,
    permission_changed_at,
    hard_bounced,
    complained,
    coalesce(email_permission = 'OPTOUT', false) or hard_bounced or complained as suppressed,
    prior_last_engaged_at,
    prior_engagements_30d,
    {as_of} as as_of
from flagged
