-- An incremental build: the stored aggregates (built as of {previous}, or merged up to it: the
-- audiences.contact_aggregates rows joined with the columns they leave to audiences.profiles) plus what
-- changed by {as_of}, into the temp table _merged (one row per contact in _plus). aggregates.sql builds the two inputs:
--   _plus:  as of {as_of}, over the new files' events and contacts rows, and the old events whose
--           contribution changed (they became due, or crossed a window edge, since {previous});
--   _minus: as of {previous}, over those same old events.
-- Sums add _plus and take away _minus. Min, max, bit_or and "latest value" columns only grow as time
-- passes and facts arrive, so they merge with _plus alone; the day/week masks are re-based to
-- {as_of}'s day first. The rows equal a full build's (tests/audiences/test_incremental.py).
create or replace temp macro _latest_key(value, seen_at) as (epoch_us(seen_at)::hugeint << 64) + hash(value);
-- the newer of two "latest" values, with the tie-break aggregates.sql uses
create or replace temp macro _newer(p_value, p_at, s_value, s_at) as
    case
        when s_at is null or _latest_key(p_value, p_at) > _latest_key(s_value, s_at) then p_value
        else s_value
    end;
create or replace temp macro _rebased(mask, shift, width) as
    case when mask is null then 0::ubigint
         when shift >= width then 0::ubigint
         else (mask << shift::integer) & ((1::ubigint << width) - 1) end;

create or replace temp table _merged as
select
    s.contact_key is not null as _stored,
    p.contact_key,
    coalesce(s.riid, p.riid) as riid,
    _newer(p.latest_customer_id, p.latest_customer_id_at, s.latest_customer_id, s.latest_customer_id_at)
        as latest_customer_id,
    greatest(p.latest_customer_id_at, s.latest_customer_id_at) as latest_customer_id_at,
    _newer(p.latest_email, p.latest_email_at, s.latest_email, s.latest_email_at) as latest_email,
    greatest(p.latest_email_at, s.latest_email_at) as latest_email_at,
    least(p.first_seen_at, s.first_seen_at) as first_seen_at,
    greatest(p.last_seen_at, s.last_seen_at) as last_seen_at,
    coalesce(s.sends, 0) + coalesce(p.sends, 0) - coalesce(m.sends, 0) as sends,
    coalesce(s.opens, 0) + coalesce(p.opens, 0) - coalesce(m.opens, 0) as opens,
    coalesce(s.clicks, 0) + coalesce(p.clicks, 0) - coalesce(m.clicks, 0) as clicks,
    coalesce(s.bounces, 0) + coalesce(p.bounces, 0) - coalesce(m.bounces, 0) as bounces,
    coalesce(s.conversions, 0) + coalesce(p.conversions, 0) - coalesce(m.conversions, 0) as conversions,
    coalesce(s.complaints, 0) + coalesce(p.complaints, 0) - coalesce(m.complaints, 0) as complaints,
    coalesce(s.opens_7d, 0) + coalesce(p.opens_7d, 0) - coalesce(m.opens_7d, 0) as opens_7d,
    coalesce(s.opens_30d, 0) + coalesce(p.opens_30d, 0) - coalesce(m.opens_30d, 0) as opens_30d,
    coalesce(s.opens_90d, 0) + coalesce(p.opens_90d, 0) - coalesce(m.opens_90d, 0) as opens_90d,
    coalesce(s.clicks_7d, 0) + coalesce(p.clicks_7d, 0) - coalesce(m.clicks_7d, 0) as clicks_7d,
    coalesce(s.clicks_30d, 0) + coalesce(p.clicks_30d, 0) - coalesce(m.clicks_30d, 0) as clicks_30d,
    coalesce(s.clicks_90d, 0) + coalesce(p.clicks_90d, 0) - coalesce(m.clicks_90d, 0) as clicks_90d,
    coalesce(s.conversions_30d, 0) + coalesce(p.conversions_30d, 0) - coalesce(m.conversions_30d, 0) as conversions_30d,
    coalesce(s.conversions_90d, 0) + coalesce(p.conversions_90d, 0) - coalesce(m.conversions_90d, 0) as conversions_90d,
    coalesce(s.engagements_14d, 0) + coalesce(p.engagements_14d, 0) - coalesce(m.engagements_14d, 0) as engagements_14d,
    coalesce(s.engagements_prev_14d, 0) + coalesce(p.engagements_prev_14d, 0) - coalesce(m.engagements_prev_14d, 0) as engagements_prev_14d,
    coalesce(s.prior_engagements_30d, 0) + coalesce(p.prior_engagements_30d, 0) - coalesce(m.prior_engagements_30d, 0) as prior_engagements_30d,
    _rebased(s.engaged_days_mask, p.mask_day - s.mask_day, 30) | p.engaged_days_mask as engaged_days_mask,
    _rebased(s.engaged_weeks_mask, p.mask_week - s.mask_week, 12) | p.engaged_weeks_mask as engaged_weeks_mask,
    p.mask_day,
    p.mask_week,
    greatest(p.last_sent_at, s.last_sent_at) as last_sent_at,
    greatest(p.last_open_at, s.last_open_at) as last_open_at,
    greatest(p.last_click_at, s.last_click_at) as last_click_at,
    greatest(p.last_conversion_at, s.last_conversion_at) as last_conversion_at,
    greatest(p.last_bounce_at, s.last_bounce_at) as last_bounce_at,
    greatest(p.last_hard_bounce_at, s.last_hard_bounce_at) as last_hard_bounce_at,
    greatest(p.last_complaint_at, s.last_complaint_at) as last_complaint_at,
    greatest(p.last_opt_in_at, s.last_opt_in_at) as last_opt_in_at,
    greatest(p.last_opt_out_at, s.last_opt_out_at) as last_opt_out_at,
    greatest(p.prior_last_engaged_at, s.prior_last_engaged_at) as prior_last_engaged_at,
    case
        when s.contact_permission_fact is null or p.contact_permission_fact > s.contact_permission_fact
            then p.contact_permission_fact
        else s.contact_permission_fact
    end as contact_permission_fact
from _plus as p
left join {stored} as s using (contact_key)
left join _minus as m using (contact_key);

-- Contacts whose profile to re-derive: the merged ones, and those whose day/week masks lose a day
-- or week between their mask_day/mask_week and as_of (profiles.sql re-bases every mask on read).
create or replace temp table _rederive as
with shifts as (
    select
        contact_key,
        engaged_days_mask,
        engaged_weeks_mask,
        epoch_us({as_of}) // 86400000000 - mask_day as day_shift,
        (epoch_us({as_of}) // 86400000000 + 3) // 7 - mask_week as week_shift
    from audiences.contact_aggregates
)
select contact_key from _merged
union
select contact_key from shifts
where (day_shift > 0 and engaged_days_mask <> _rebased(engaged_days_mask, 0, 30 - least(day_shift, 30)))
   or (week_shift > 0 and engaged_weeks_mask <> _rebased(engaged_weeks_mask, 0, 12 - least(week_shift, 12)));

drop macro _rebased;
drop macro _newer;
drop macro _latest_key;
