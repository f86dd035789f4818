-- audiences.scores and audiences.propensity_calibration as of {as_of}, from audiences.profiles
-- built for the same {as_of}. Every score is 0-100; formulas, windows and scaling: docs/scores.md.

-- The engagement bucket from the last open/click and the opens + clicks of the 30 days before `ref_time`.
create or replace temp macro _engagement_bucket(last_engaged, engagements_30d, ref_time) as
    case
        when last_engaged is null then 'never'
        when last_engaged > ref_time - interval 30 day then
            (case when last_engaged > ref_time - interval 7 day then '7d:' else '30d:' end)
            || (case when engagements_30d >= 10 then '10+' when engagements_30d >= 3 then '3-9' else '1-2' end)
        when last_engaged > ref_time - interval 90 day then '90d'
        else 'older'
    end;

-- Calibration: of the profiles that existed a week ago, in each bucket they were in then, the share
-- that opened or clicked since. A bucket's propensity is that share, smoothed toward the
-- account-wide share with the weight of 10 profiles so that a bucket of 2 profiles cannot claim
-- 0 % or 100 %.
create or replace table audiences.propensity_calibration as
with calibration as (
    select
        _engagement_bucket(prior_last_engaged_at, prior_engagements_30d, {as_of} - interval 7 day)
            as bucket,
        count(*) as profiles,
        count(*) filter (where opens_7d + clicks_7d > 0) as engaged_next_7d
    from audiences.profiles
    where first_seen_at <= {as_of} - interval 7 day
    group by bucket
),
account as (
    select sum(engaged_next_7d) / sum(profiles) as rate from calibration
)
select
    calibration.bucket,
    calibration.profiles,
    calibration.engaged_next_7d,
    calibration.engaged_next_7d / calibration.profiles as rate,
    round(100 * (calibration.engaged_next_7d + 10 * account.rate) / (calibration.profiles + 10))::integer
        as propensity_score,
    {as_of} as as_of
from calibration, account
order by calibration.bucket;

-- One pass over the profiles; the calibration is a handful of rows, joined by bucket.
create or replace table audiences.scores as
with account as (
    select sum(engaged_next_7d) / sum(profiles) as rate from audiences.propensity_calibration
),
p as (
    select
        *,
        _engagement_bucket(last_engaged_at, opens_30d + clicks_30d, {as_of}) as engagement_bucket
    from audiences.profiles
)
select
    p.contact_key,
    p.engagement_bucket,
    round(100 * (p.opens_90d + p.clicks_90d + p.conversions_90d)
        / (p.opens_90d + p.clicks_90d + p.conversions_90d + 10))::integer as quantity_score,
    round(100 * p.engaged_days_30d / (p.engaged_days_30d + 4))::integer as frequency_score,
    case
        when p.last_engaged_at is null then 0
        else round(100 * pow(0.5, (epoch_us({as_of}) - epoch_us(p.last_engaged_at)) / 86400e6 / 30))::integer
    end as recency_score,
    round(100 * ((p.clicks_90d + p.conversions_90d) / greatest(p.opens_90d, 1))
        / ((p.clicks_90d + p.conversions_90d) / greatest(p.opens_90d, 1) + 0.5))::integer as intensity_score,
    case
        when p.engagements_14d + p.engagements_prev_14d = 0 then 50
        else round(50 + 50 * (p.engagements_14d - p.engagements_prev_14d)
            / (p.engagements_14d + p.engagements_prev_14d))::integer
    end as momentum_score,
    round(100 * p.engaged_weeks_12w / 12)::integer as consistency_score,
    coalesce(c.propensity_score, round(100 * account.rate)::integer) as propensity_score,
    {as_of} as as_of
from p
left join audiences.propensity_calibration as c on c.bucket = p.engagement_bucket
cross join account;

drop macro _engagement_bucket;
