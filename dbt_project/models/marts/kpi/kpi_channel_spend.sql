with

spend as (
    select * from {{ ref('stg_ads__ad_spends') }}
),

attribution as (
    select * from {{ ref('fct_order_attribution') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

daily_spend as (
    select
        spend_date as activity_date,
        channel,
        sum(spend) as spend,
        sum(impressions) as impressions,
        sum(clicks) as clicks
    from spend
    group by spend_date, channel
),

daily_attribution as (
    select
        attribution.order_date as activity_date,
        attribution.channel,
        sum(attribution.last_touch_credit) as last_touch_orders,
        sum(attribution.first_touch_revenue) as first_touch_revenue,
        sum(attribution.last_touch_revenue) as last_touch_revenue,
        sum(attribution.linear_revenue) as linear_revenue,
        sum(attribution.position_revenue) as position_revenue,
        -- A customer is acquired by the channel of the last touch before their first order.
        sum(case when orders.customer_order_number = 1 then attribution.last_touch_credit else 0 end) as new_customers
    from attribution
    inner join orders
        on orders.order_key = attribution.order_key
    group by attribution.order_date, attribution.channel
),

joined as (
    select
        coalesce(daily_spend.activity_date, daily_attribution.activity_date) as activity_date,
        coalesce(daily_spend.channel, daily_attribution.channel) as channel,
        coalesce(daily_spend.spend, 0) as spend,
        coalesce(daily_spend.impressions, 0) as impressions,
        coalesce(daily_spend.clicks, 0) as clicks,
        coalesce(daily_attribution.last_touch_orders, 0) as last_touch_orders,
        coalesce(daily_attribution.first_touch_revenue, 0) as first_touch_revenue,
        coalesce(daily_attribution.last_touch_revenue, 0) as last_touch_revenue,
        coalesce(daily_attribution.linear_revenue, 0) as linear_revenue,
        coalesce(daily_attribution.position_revenue, 0) as position_revenue,
        coalesce(daily_attribution.new_customers, 0) as new_customers
    from daily_spend
    full outer join daily_attribution
        on daily_attribution.activity_date = daily_spend.activity_date
        and daily_attribution.channel = daily_spend.channel
),

final as (
    select
        activity_date,
        channel,
        cast(spend as decimal(18, 4)) as spend,
        cast(impressions as bigint) as impressions,
        cast(clicks as bigint) as clicks,
        cast(last_touch_orders as {{ type_double() }}) as last_touch_orders,
        cast(first_touch_revenue as decimal(18, 4)) as first_touch_revenue,
        cast(last_touch_revenue as decimal(18, 4)) as last_touch_revenue,
        cast(linear_revenue as decimal(18, 4)) as linear_revenue,
        cast(position_revenue as decimal(18, 4)) as position_revenue,
        cast(new_customers as {{ type_double() }}) as new_customers,
        {{ round_float(safe_divide('clicks', 'impressions')) }} as click_through_rate,
        {{ round_float(safe_divide('last_touch_revenue', 'spend')) }} as roas,
        {{ round_float(safe_divide('spend', 'new_customers')) }} as cac
    from joined
)

select * from final
