{%- set rfm_quintile = "least(5, 1 + floor(5 * percent_rank() over (partition by as_of_date, orders_total > 0 order by VALUE) + 1e-9))" -%}
{#-
    Point-in-time features, one row per customer and as-of date: each intermediate model reads only what
    happened strictly before the as-of date (models/intermediate/customers/); this model joins them,
    scores RFM and fixes the types the contract promises.
-#}
with

population as (
    select * from {{ ref('int_customer_population_asof') }}
),

orders as (
    select * from {{ ref('int_customer_orders_asof') }}
),

sessions as (
    select * from {{ ref('int_customer_sessions_asof') }}
),

sends as (
    select * from {{ ref('int_customer_sends_asof') }}
),

consents as (
    select * from {{ ref('int_customer_consents_asof') }}
),

features as (
    select
        population.as_of_date,
        population.customer_id,
        population.member_id,
        coalesce(orders.orders_total, 0) as orders_total,
        coalesce(orders.revenue_total, 0) as revenue_total,
        coalesce(orders.margin_total, 0) as margin_total,
        coalesce(orders.returns_total, 0) as returns_total,
        coalesce(orders.net_revenue_total, 0) as net_revenue_total,
        orders.first_order_date,
        orders.last_order_date,
        orders.recency_days,
        coalesce(orders.frequency, 0) as frequency,
        coalesce(orders.recency, 0) as recency,
        orders.t,
        coalesce(orders.monetary_value, 0) as monetary_value,
        orders.avg_order_value,
        orders.online_order_share,
        coalesce(orders.orders_30d, 0) as orders_30d,
        coalesce(orders.orders_90d, 0) as orders_90d,
        coalesce(orders.orders_365d, 0) as orders_365d,
        coalesce(orders.revenue_90d, 0) as revenue_90d,
        coalesce(orders.revenue_365d, 0) as revenue_365d,
        case when population.signup_at < cast(population.as_of_date as timestamp)
            then {{ dbt.datediff('population.signup_at', 'population.as_of_date', 'day') }}
        end as tenure_days,
        coalesce(sessions.sessions_30d, 0) as sessions_30d,
        coalesce(sessions.product_views_30d, 0) as product_views_30d,
        coalesce(sessions.add_to_carts_30d, 0) as add_to_carts_30d,
        coalesce(sends.sends_90d, 0) as sends_90d,
        coalesce(sends.opens_90d, 0) as opens_90d,
        coalesce(sends.clicks_90d, 0) as clicks_90d,
        {%- for channel in var('channels') %}
        coalesce(sends.sends_{{ channel }}_365d, 0) as sends_{{ channel }}_365d,
        coalesce(sends.opens_{{ channel }}_365d, 0) as opens_{{ channel }}_365d,
        {%- endfor %}
        {%- for channel in var('channels') %}
        coalesce(consents.consent_{{ channel }}, false) as consent_{{ channel }}{{ "," if not loop.last }}
        {%- endfor %}
    from population
    left join orders
        on orders.as_of_date = population.as_of_date and orders.customer_id = population.customer_id
    left join sessions
        on sessions.as_of_date = population.as_of_date and sessions.customer_id = population.customer_id
    left join sends
        on sends.as_of_date = population.as_of_date and sends.customer_id = population.customer_id
    left join consents
        on consents.as_of_date = population.as_of_date and consents.customer_id = population.customer_id
),

scored as (
    -- Quintiles of value, not of row position: percent_rank gives equal values equal ranks, so customers
    -- with the same recency, orders or net spend get the same score and segment, whatever their ids.
    -- The lowest value scores 1; a score needs its value to pass 20 %, 40 %, ... of the other buyers.
    select
        *,
        case when orders_total > 0 then {{ rfm_quintile | replace('VALUE', 'recency_days desc') }} end as r_score,
        case when orders_total > 0 then {{ rfm_quintile | replace('VALUE', 'orders_total') }} end as f_score,
        case when orders_total > 0 then {{ rfm_quintile | replace('VALUE', 'net_revenue_total') }} end as m_score
    from features
),

final as (
    select
        as_of_date,
        cast(as_of_date as {{ type_text() }}) as cycle_id,
        customer_id,
        member_id,
        cast(orders_total as integer) as orders_total,
        cast(revenue_total as decimal(18, 4)) as revenue_total,
        cast(margin_total as decimal(18, 4)) as margin_total,
        cast(returns_total as decimal(18, 4)) as returns_total,
        cast(net_revenue_total as decimal(18, 4)) as net_revenue_total,
        first_order_date,
        last_order_date,
        cast(recency_days as integer) as recency_days,
        cast(frequency as integer) as frequency,
        cast(recency as integer) as recency,
        cast(t as integer) as t,
        cast(monetary_value as decimal(18, 4)) as monetary_value,
        cast(avg_order_value as {{ type_double() }}) as avg_order_value,
        cast(online_order_share as {{ type_double() }}) as online_order_share,
        cast(orders_30d as integer) as orders_30d,
        cast(orders_90d as integer) as orders_90d,
        cast(orders_365d as integer) as orders_365d,
        cast(revenue_90d as decimal(18, 4)) as revenue_90d,
        cast(revenue_365d as decimal(18, 4)) as revenue_365d,
        cast(tenure_days as integer) as tenure_days,
        cast(sessions_30d as integer) as sessions_30d,
        cast(product_views_30d as integer) as product_views_30d,
        cast(add_to_carts_30d as integer) as add_to_carts_30d,
        cast(sends_90d as integer) as sends_90d,
        cast(opens_90d as integer) as opens_90d,
        cast(clicks_90d as integer) as clicks_90d,
        {%- for channel in var('channels') %}
        cast(sends_{{ channel }}_365d as integer) as sends_{{ channel }}_365d,
        cast(opens_{{ channel }}_365d as integer) as opens_{{ channel }}_365d,
        {%- endfor %}
        {%- for channel in var('channels') %}
        consent_{{ channel }},
        {%- endfor %}
        cast(r_score as integer) as r_score,
        cast(f_score as integer) as f_score,
        cast(m_score as integer) as m_score,
        case
            when orders_total = 0 then 'prospect'
            when r_score >= 4 and f_score >= 4 then 'champions'
            when r_score >= 3 and f_score >= 3 then 'loyal'
            when r_score >= 4 and f_score <= 1 then 'new'
            when r_score >= 3 then 'potential_loyalist'
            when f_score >= 4 then 'cant_lose'
            when f_score >= 2 then 'at_risk'
            when r_score = 2 then 'hibernating'
            else 'lost'
        end as rfm_segment
    from scored
)

select * from final
