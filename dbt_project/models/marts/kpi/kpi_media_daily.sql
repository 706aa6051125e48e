{#-
    One row per day and channel of the media window (the first to the last day with spend): the
    channel's spend (0 on a day without) beside the day's revenue, what the media mix model
    (ml/mmm.py) regresses. Days without sales are left out, as kpi_daily leaves them out.
-#}
with

spend as (
    select * from {{ ref('stg_ads__ad_spends') }}
),

daily as (
    select * from {{ ref('kpi_daily') }}
),

window_bounds as (
    select
        min(spend_date) as first_date,
        max(spend_date) as last_date
    from spend
),

days as (
    select daily.order_date as activity_date, daily.revenue, daily.orders
    from daily
    inner join window_bounds
        on daily.order_date between window_bounds.first_date and window_bounds.last_date
),

channels as (
    select distinct channel from spend
),

channel_spend as (
    select
        spend_date as activity_date,
        channel,
        sum(spend) as spend,
        sum(impressions) as impressions,
        sum(clicks) as clicks
    from spend
    group by spend_date, channel
),

final as (
    select
        days.activity_date,
        channels.channel,
        cast(coalesce(channel_spend.spend, 0) as decimal(18, 4)) as spend,
        cast(coalesce(channel_spend.impressions, 0) as bigint) as impressions,
        cast(coalesce(channel_spend.clicks, 0) as bigint) as clicks,
        cast(days.revenue as decimal(18, 4)) as revenue,
        cast(days.orders as integer) as orders
    from days
    cross join channels
    left join channel_spend
        on channel_spend.activity_date = days.activity_date
        and channel_spend.channel = channels.channel
)

select * from final
