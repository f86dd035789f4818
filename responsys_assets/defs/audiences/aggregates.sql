-- Per-contact aggregates as of {as_of}, from the events in {events} and the contacts-file rows in
-- {contacts}, into the temp table {target}. Only facts at or before {as_of} count.
-- A full build reads responsys.events / responsys.contacts; an incremental one reads only the
-- events whose contribution changed since the last build (incremental.py) and merges the result
-- into audiences.contact_aggregates. Every column is therefore a sum, a min/max, a bit_or or a
-- "latest value" with a deterministic tie-break, so partial results merge exactly.
-- Event types and column meanings: docs/scores.md.

-- One pass over the events groups them by identity (the RIID, or the customer id / email when the
-- RIID is missing). Kind, age and calendar day/week are computed once per event so the FILTERs
-- below compare small integers.
-- Event kinds: 1 SENT, 2 OPEN, 3 CLICK, 4 BOUNCE, 5 CONVERT, 6 COMPLAINT, 7 OPT_IN, 8 OPT_OUT, 0 other.
create or replace temp table _event_groups as
with e as (
    select
        riid,
        case when riid is null then nullif(trim(customer_id), '') end as anon_customer_id,
        case when riid is null then nullif(lower(trim(email)), '') end as anon_email,
        email,
        customer_id,
        attributes,
        event_captured_at as captured_at,
        epoch_us({as_of}) - epoch_us(event_captured_at) as age_us,
        -- UTC calendar days / Monday weeks between the event and as_of
        epoch_us({as_of}) // 86400000000 - epoch_us(event_captured_at) // 86400000000 as age_days,
        (epoch_us({as_of}) // 86400000000 + 3) // 7
            - (epoch_us(event_captured_at) // 86400000000 + 3) // 7 as age_weeks,
        case event_type
            when 'SENT' then 1 when 'OPEN' then 2 when 'CLICK' then 3 when 'BOUNCE' then 4
            when 'CONVERT' then 5 when 'CONVERSION' then 5 when 'COMPLAINT' then 6
            when 'OPT_IN' then 7 when 'OPTIN' then 7 when 'OPT_OUT' then 8 when 'OPTOUT' then 8
            else 0
        end::utinyint as kind
    from {events}
    where event_captured_at <= {as_of}
      and (riid is not null or trim(customer_id) <> '' or trim(email) <> '')
)
select
    riid,
    anon_customer_id,
    anon_email,
    min(captured_at) as first_seen_at,
    max(captured_at) as last_seen_at,
    -- the latest value; at the same instant the one with the larger hash, so any split merges alike
    arg_max(email, (epoch_us(captured_at)::hugeint << 64) + hash(email))
        filter (where email <> '') as latest_email,
    max(captured_at) filter (where email <> '') as latest_email_at,
    arg_max(customer_id, (epoch_us(captured_at)::hugeint << 64) + hash(customer_id))
        filter (where customer_id <> '') as latest_customer_id,
    max(captured_at) filter (where customer_id <> '') as latest_customer_id_at,
    count(*) filter (where kind = 1) as sends,
    count(*) filter (where kind = 2) as opens,
    count(*) filter (where kind = 3) as clicks,
    count(*) filter (where kind = 4) as bounces,
    count(*) filter (where kind = 5) as conversions,
    count(*) filter (where kind = 6) as complaints,
    count(*) filter (where kind = 2 and age_us < 7 * 86400000000) as opens_7d,
    count(*) filter (where kind = 2 and age_us < 30 * 86400000000) as opens_30d,
    count(*) filter (where kind = 2 and age_us < 90 * 86400000000) as opens_90d,
    count(*) filter (where kind = 3 and age_us < 7 * 86400000000) as clicks_7d,
    count(*) filter (where kind = 3 and age_us < 30 * 86400000000) as clicks_30d,
    count(*) filter (where kind = 3 and age_us < 90 * 86400000000) as clicks_90d,
    count(*) filter (where kind = 5 and age_us < 30 * 86400000000) as conversions_30d,
    count(*) filter (where kind = 5 and age_us < 90 * 86400000000) as conversions_90d,
    count(*) filter (where kind in (2, 3) and age_us < 14 * 86400000000) as engagements_14d,
    count(*) filter (
        where kind in (2, 3) and age_us >= 14 * 86400000000 and age_us < 28 * 86400000000
    ) as engagements_prev_14d,
    -- bit d set = engaged on the UTC day d days before as_of's day; least() because DuckDB
    -- computes an aggregate's argument before its FILTER
    bit_or(1::ubigint << least(age_days, 63)::integer)
        filter (where kind in (2, 3) and age_days < 30) as engaged_days_mask,
    -- bit w set = engaged in the (Monday) week w weeks before as_of's week
    bit_or(1::ubigint << least(age_weeks, 63)::integer)
        filter (where kind in (2, 3) and age_weeks < 12) as engaged_weeks_mask,
    max(captured_at) filter (where kind = 1) as last_sent_at,
    max(captured_at) filter (where kind = 2) as last_open_at,
    max(captured_at) filter (where kind = 3) as last_click_at,
    max(captured_at) filter (where kind = 5) as last_conversion_at,
    max(captured_at) filter (where kind = 4) as last_bounce_at,
    max(captured_at) filter (
        where kind = 4 and upper(trim(attributes ->> 'BOUNCE_TYPE')) = 'H'
    ) as last_hard_bounce_at,
    max(captured_at) filter (where kind = 6) as last_complaint_at,
    max(captured_at) filter (where kind = 7) as last_opt_in_at,
    max(captured_at) filter (where kind = 8) as last_opt_out_at,
    max(captured_at) filter (where kind in (2, 3) and age_us >= 7 * 86400000000) as prior_last_engaged_at,
    count(*) filter (
        where kind in (2, 3) and age_us >= 7 * 86400000000 and age_us < 37 * 86400000000
    ) as prior_engagements_30d
from e
group by 1, 2, 3;

-- The contacts file: identities and dated permission facts (I = OPTIN, O = OPTOUT).
create or replace temp table _contact_groups as
select
    riid,
    case when riid is null then nullif(trim(customer_id), '') end as anon_customer_id,
    case when riid is null then nullif(lower(trim(email)), '') end as anon_email,
    min(modified_at) as first_seen_at,
    max(modified_at) as last_seen_at,
    arg_max(email, (epoch_us(modified_at)::hugeint << 64) + hash(email))
        filter (where email <> '') as latest_email,
    max(modified_at) filter (where email <> '') as latest_email_at,
    arg_max(customer_id, (epoch_us(modified_at)::hugeint << 64) + hash(customer_id))
        filter (where customer_id <> '') as latest_customer_id,
    max(modified_at) filter (where customer_id <> '') as latest_customer_id_at,
    max({'at': modified_at, 'file': source_file, 'line': source_line, 'permission': permission})
        filter (where permission is not null) as contact_permission_fact
from (
    select
        *,
        case
            when upper(trim(email_permission_status)) in ('I', 'OPTIN', 'OPT_IN') then 'OPTIN'
            when upper(trim(email_permission_status)) in ('O', 'OPTOUT', 'OPT_OUT') then 'OPTOUT'
        end as permission
    from {contacts}
)
where modified_at <= {as_of}
  and (riid is not null or trim(customer_id) <> '' or trim(email) <> '')
group by 1, 2, 3;

-- Identities resolved to contacts: an email- or customer-id-only identity joins the RIID seen with
-- the same email / customer id; this runs on the small per-identity result, not on every event.
create or replace temp table {target} as
with groups as (
    select * from _event_groups
    union all by name
    select * from _contact_groups
),
-- (only built when some identity lacks a RIID)
riid_identities as (
    select riid, nullif(lower(trim(latest_email)), '') as email, nullif(trim(latest_customer_id), '') as customer_id
    from groups
    where riid is not null and exists (select 1 from groups where riid is null)
),
email_to_riid as (
    select email, min(riid) as riid from riid_identities where email is not null group by email
),
customer_to_riid as (
    select customer_id, min(riid) as riid from riid_identities where customer_id is not null group by customer_id
),
keyed as (
    select
        g.*,
        coalesce(g.riid, c.riid, e.riid) as resolved_riid,
        case when coalesce(g.riid, c.riid, e.riid) is null then g.anon_customer_id end as key_customer_id,
        case when coalesce(g.riid, c.riid, e.riid) is null and g.anon_customer_id is null
            then g.anon_email end as key_email
    from groups as g
    left join customer_to_riid as c on g.riid is null and c.customer_id = g.anon_customer_id
    left join email_to_riid as e on g.riid is null and e.email = g.anon_email
)
select
    case
        when resolved_riid is not null then 'riid:' || resolved_riid
        when key_customer_id is not null then 'cust:' || key_customer_id
        else 'email:' || sha256(key_email)
    end as contact_key,
    resolved_riid as riid,
    arg_max(latest_customer_id, (epoch_us(latest_customer_id_at)::hugeint << 64) + hash(latest_customer_id))
        as latest_customer_id,
    max(latest_customer_id_at) as latest_customer_id_at,
    arg_max(latest_email, (epoch_us(latest_email_at)::hugeint << 64) + hash(latest_email)) as latest_email,
    max(latest_email_at) as latest_email_at,
    min(first_seen_at) as first_seen_at,
    max(last_seen_at) as last_seen_at,
    coalesce(sum(sends), 0)::bigint as sends,
    coalesce(sum(opens), 0)::bigint as opens,
    coalesce(sum(clicks), 0)::bigint as clicks,
    coalesce(sum(bounces), 0)::bigint as bounces,
    coalesce(sum(conversions), 0)::bigint as conversions,
    coalesce(sum(complaints), 0)::bigint as complaints,
    coalesce(sum(opens_7d), 0)::bigint as opens_7d,
    coalesce(sum(opens_30d), 0)::bigint as opens_30d,
    coalesce(sum(opens_90d), 0)::bigint as opens_90d,
    coalesce(sum(clicks_7d), 0)::bigint as clicks_7d,
    coalesce(sum(clicks_30d), 0)::bigint as clicks_30d,
    coalesce(sum(clicks_90d), 0)::bigint as clicks_90d,
    coalesce(sum(conversions_30d), 0)::bigint as conversions_30d,
    coalesce(sum(conversions_90d), 0)::bigint as conversions_90d,
    coalesce(sum(engagements_14d), 0)::bigint as engagements_14d,
    coalesce(sum(engagements_prev_14d), 0)::bigint as engagements_prev_14d,
    coalesce(bit_or(engaged_days_mask), 0)::ubigint as engaged_days_mask,
    coalesce(bit_or(engaged_weeks_mask), 0)::ubigint as engaged_weeks_mask,
    epoch_us({as_of}) // 86400000000 as mask_day,
    (epoch_us({as_of}) // 86400000000 + 3) // 7 as mask_week,
    max(last_sent_at) as last_sent_at,
    max(last_open_at) as last_open_at,
    max(last_click_at) as last_click_at,
    max(last_conversion_at) as last_conversion_at,
    max(last_bounce_at) as last_bounce_at,
    max(last_hard_bounce_at) as last_hard_bounce_at,
    max(last_complaint_at) as last_complaint_at,
    max(last_opt_in_at) as last_opt_in_at,
    max(last_opt_out_at) as last_opt_out_at,
    max(contact_permission_fact) as contact_permission_fact,
    max(prior_last_engaged_at) as prior_last_engaged_at,
    coalesce(sum(prior_engagements_30d), 0)::bigint as prior_engagements_30d
from keyed
group by resolved_riid, key_customer_id, key_email;

drop table _contact_groups;
drop table _event_groups;
