-- audiences.profiles as of {as_of}: one row per contact, from responsys.events and responsys.contacts.
-- Only facts at or before {as_of} count and every window ends at {as_of}, so a past day recomputes
-- identically after later events arrive. One pass over the events groups them by identity (the
-- RIID, or the customer id / email when the RIID is missing); the small per-identity result is then
-- resolved to contacts (an email- or customer-id-only identity joins the RIID seen with the same
-- email / customer id) and merged. Event types and column meanings: docs/scores.md.

-- Event kinds: 1 SENT, 2 OPEN, 3 CLICK, 4 BOUNCE, 5 CONVERT, 6 COMPLAINT, 7 OPT_IN, 8 OPT_OUT, 0 other.
-- Kind and age are computed once per event so the many FILTERs below compare small integers.
create or replace temp table _profile_event_groups as
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
        case event_type
            when 'SENT' then 1 when 'OPEN' then 2 when 'CLICK' then 3 when 'BOUNCE' then 4
            when 'CONVERT' then 5 when 'CONVERSION' then 5 when 'COMPLAINT' then 6
            when 'OPT_IN' then 7 when 'OPTIN' then 7 when 'OPT_OUT' then 8 when 'OPTOUT' then 8
            else 0
        end::utinyint as kind
    from responsys.events
    where event_captured_at <= {as_of}
      and (riid is not null or trim(customer_id) <> '' or trim(email) <> '')
)
select
    riid,
    anon_customer_id,
    anon_email,
    min(captured_at) as first_seen_at,
    max(captured_at) as last_seen_at,
    arg_max(email, captured_at) filter (where email <> '') as latest_email,
    max(captured_at) filter (where email <> '') as latest_email_at,
    arg_max(customer_id, captured_at) filter (where customer_id <> '') as latest_customer_id,
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
    -- bit d set = engaged in the 24 h period d (0 = the last 24 h before as_of); least() because
    -- DuckDB computes an aggregate's argument before its FILTER
    bit_or(1::ubigint << least(age_us // 86400000000, 63)::integer)
        filter (where kind in (2, 3) and age_us < 30 * 86400000000) as engaged_days_mask,
    -- bit w set = engaged in the 7-day period w (0 = the last 7 days before as_of)
    bit_or(1::ubigint << least(age_us // (7 * 86400000000), 63)::integer)
        filter (where kind in (2, 3) and age_us < 84 * 86400000000) as engaged_weeks_mask,
    max(captured_at) filter (where kind = 1) as last_sent_at,
    max(captured_at) filter (where kind = 2) as last_open_at,
    max(captured_at) filter (where kind = 3) as last_click_at,
    max(captured_at) filter (where kind = 5) as last_conversion_at,
    max(captured_at) filter (where kind = 4) as last_bounce_at,
    max(captured_at) filter (
        where kind = 4 and upper(trim(attributes ->> 'BOUNCE_TYPE')) = 'H'
    ) as last_hard_bounce_at,
    max(captured_at) filter (where kind = 6) as last_complaint_at,
    -- the latest opt-in/out; at the same instant the opt-out wins
    arg_min(kind, age_us * 2 + (kind = 7)::bigint) filter (where kind in (7, 8)) as opt_kind,
    max(captured_at) filter (where kind in (7, 8)) as opt_at,
    max(captured_at) filter (where kind in (2, 3) and age_us >= 7 * 86400000000) as prior_last_engaged_at,
    count(*) filter (
        where kind in (2, 3) and age_us >= 7 * 86400000000 and age_us < 37 * 86400000000
    ) as prior_engagements_30d
from e
group by 1, 2, 3;

-- The contacts file: identities and dated permission facts (I = OPTIN, O = OPTOUT).
create or replace temp table _profile_contact_groups as
select
    riid,
    case when riid is null then nullif(trim(customer_id), '') end as anon_customer_id,
    case when riid is null then nullif(lower(trim(email)), '') end as anon_email,
    min(modified_at) as first_seen_at,
    max(modified_at) as last_seen_at,
    arg_max(email, modified_at) filter (where email <> '') as latest_email,
    max(modified_at) filter (where email <> '') as latest_email_at,
    arg_max(customer_id, modified_at) filter (where customer_id <> '') as latest_customer_id,
    max(modified_at) filter (where customer_id <> '') as latest_customer_id_at,
    arg_max(permission, (modified_at, source_file, source_line))
        filter (where permission is not null) as contact_permission,
    max(modified_at) filter (where permission is not null) as contact_permission_at
from (
    select
        *,
        case
            when upper(trim(email_permission_status)) in ('I', 'OPTIN', 'OPT_IN') then 'OPTIN'
            when upper(trim(email_permission_status)) in ('O', 'OPTOUT', 'OPT_OUT') then 'OPTOUT'
        end as permission
    from responsys.contacts
)
where modified_at <= {as_of}
  and (riid is not null or trim(customer_id) <> '' or trim(email) <> '')
group by 1, 2, 3;

create or replace temp table _profile_groups as
select * from _profile_event_groups
union all by name
select * from _profile_contact_groups;

create or replace table audiences.profiles as
with riid_identities as (
    select riid, nullif(lower(trim(latest_email)), '') as email, nullif(trim(latest_customer_id), '') as customer_id
    from _profile_groups
    where riid is not null
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
        case
            when coalesce(g.riid, c.riid, e.riid) is not null then 'riid:' || coalesce(g.riid, c.riid, e.riid)
            when g.anon_customer_id is not null then 'cust:' || g.anon_customer_id
            else 'email:' || sha256(g.anon_email)
        end as contact_key,
        coalesce(g.riid, c.riid, e.riid) as resolved_riid
    from _profile_groups as g
    left join customer_to_riid as c on g.riid is null and c.customer_id = g.anon_customer_id
    left join email_to_riid as e on g.riid is null and e.email = g.anon_email
),
merged as (
    select
        contact_key,
        min(resolved_riid) as riid,
        arg_max(nullif(trim(latest_customer_id), ''), latest_customer_id_at) as customer_id,
        arg_max(nullif(lower(trim(latest_email)), ''), latest_email_at) as email,
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
        coalesce(bit_count(bit_or(engaged_days_mask)), 0)::integer as engaged_days_30d,
        coalesce(bit_count(bit_or(engaged_weeks_mask)), 0)::integer as engaged_weeks_12w,
        max(last_sent_at) as last_sent_at,
        max(last_open_at) as last_open_at,
        max(last_click_at) as last_click_at,
        max(last_conversion_at) as last_conversion_at,
        max(last_bounce_at) as last_bounce_at,
        max(last_hard_bounce_at) as last_hard_bounce_at,
        max(last_complaint_at) as last_complaint_at,
        arg_max(opt_kind, opt_at) as opt_kind,
        max(opt_at) as opt_at,
        arg_max(contact_permission, contact_permission_at) as contact_permission,
        max(contact_permission_at) as contact_permission_at,
        max(prior_last_engaged_at) as prior_last_engaged_at,
        coalesce(sum(prior_engagements_30d), 0)::bigint as prior_engagements_30d
    from keyed
    group by contact_key
),
permissioned as (
    select
        *,
        greatest(last_open_at, last_click_at) as last_engaged_at,
        -- the most recent fact wins; on a tie the contacts file (the list's own state) wins
        case
            when contact_permission_at is not null and (opt_at is null or contact_permission_at >= opt_at)
                then contact_permission
            when opt_kind = 7 then 'OPTIN'
            when opt_kind = 8 then 'OPTOUT'
        end as email_permission,
        greatest(contact_permission_at, opt_at) as permission_changed_at
    from merged
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
    customer_id,
    email,
    sha256(email) as email_sha256,
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
    engaged_days_30d,
    engaged_weeks_12w,
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
from flagged;

drop table _profile_groups;
drop table _profile_contact_groups;
drop table _profile_event_groups;
