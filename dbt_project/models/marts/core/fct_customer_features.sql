{%- set rfm_quintile = "least(5, 1 + floor(5 * percent_rank() over (partition by as_of_date, orders_total > 0 order by VALUE) + 1e-9))" -%}
{#-
    Point-in-time features: every input is filtered to strictly before the as-of date, so a row for
    cycle k can train a model scored on cycle k without leaking what happened during cycle k.
-#}
with

customers as (
    select * from {{ ref('dim_customers') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
    where is_revenue and customer_id is not null
),

credit_notes as (
    -- A return's value belongs to the purchase day it takes back (its original's, when that is known).
    select
        credit.customer_id,
        credit.ordered_at,
        credit.total_amount,
        coalesce(originals.order_date, credit.order_date) as value_date
    from {{ ref('fct_orders') }} as credit
    left join {{ ref('fct_orders') }} as originals
        on originals.order_key = credit.original_order_key
    where credit.is_return and credit.customer_id is not null
),

sessions as (
    select * from {{ ref('fct_sessions') }}
    where customer_id is not null
),

sends as (
    select * from {{ ref('fct_campaign_sends') }}
),

consents as (
    select * from {{ ref('stg_crm__consents') }}
),

cycle_numbers as (
    {{ dbt.generate_series(520) }}
),

data_end as (
    select max(ordered_at) as last_ordered_at from orders
),

as_of_dates as (
    select
        cast({{ dbt.dateadd('day', '(cycle_numbers.generated_number - 1) * ' ~ cycle_days(), cycle_start_date()) }} as date) as as_of_date
    from cycle_numbers
    cross join data_end
    -- Every cycle start up to the one right after the last data: that row scores the next campaign.
    where {{ dbt.dateadd('day', '(cycle_numbers.generated_number - 1) * ' ~ cycle_days(), cycle_start_date()) }}
        <= {{ dbt.dateadd('day', cycle_days(), 'data_end.last_ordered_at') }}
),

population as (
    select as_of_dates.as_of_date, customers.customer_id, customers.member_id, customers.signup_at
    from as_of_dates
    inner join customers
        on customers.first_seen_at < cast(as_of_dates.as_of_date as timestamp)
    where customers.is_member or customers.lifetime_orders > 0
),

order_history as (
    select
        population.as_of_date,
        population.customer_id,
        count(*) as orders_total,
        count(distinct orders.order_date) as purchase_days,
        sum(orders.total_amount) as revenue_total,
        sum(orders.margin_amount) as margin_total,
        min(orders.order_date) as first_order_date,
        max(orders.order_date) as last_order_date,
        count(case when orders.sales_channel = 'online' then 1 end) as online_orders,
        count(case when orders.ordered_at >= {{ dbt.dateadd('day', -30, 'cast(population.as_of_date as timestamp)') }} then 1 end) as orders_30d,
        count(case when orders.ordered_at >= {{ dbt.dateadd('day', -90, 'cast(population.as_of_date as timestamp)') }} then 1 end) as orders_90d,
        count(case when orders.ordered_at >= {{ dbt.dateadd('day', -365, 'cast(population.as_of_date as timestamp)') }} then 1 end) as orders_365d,
        sum(case when orders.ordered_at >= {{ dbt.dateadd('day', -90, 'cast(population.as_of_date as timestamp)') }} then orders.total_amount else 0 end) as revenue_90d,
        sum(case when orders.ordered_at >= {{ dbt.dateadd('day', -365, 'cast(population.as_of_date as timestamp)') }} then orders.total_amount else 0 end) as revenue_365d
    from population
    inner join orders
        on orders.customer_id = population.customer_id
        and orders.ordered_at < cast(population.as_of_date as timestamp)
    group by population.as_of_date, population.customer_id
),

return_history as (
    -- Only credit notes issued before the as-of date: a return made later is not known yet.
    select
        population.as_of_date,
        population.customer_id,
        sum(credit_notes.total_amount) as returns_total
    from population
    inner join credit_notes
        on credit_notes.customer_id = population.customer_id
        and credit_notes.ordered_at < cast(population.as_of_date as timestamp)
    group by population.as_of_date, population.customer_id
),

day_values as (
    select orders.customer_id, orders.ordered_at, orders.order_date as value_date, orders.total_amount as amount, 1 as is_sale
    from orders
    union all
    select customer_id, ordered_at, value_date, -total_amount, 0
    from credit_notes
),

daily_revenue as (
    -- A purchase day's value net of what was returned from it by the as-of date.
    select
        population.as_of_date,
        population.customer_id,
        day_values.value_date as order_date,
        sum(day_values.amount) as day_revenue
    from population
    inner join day_values
        on day_values.customer_id = population.customer_id
        and day_values.ordered_at < cast(population.as_of_date as timestamp)
    group by population.as_of_date, population.customer_id, day_values.value_date
    having max(day_values.is_sale) = 1
),

repeat_value as (
    -- BG/NBD and Gamma-Gamma count purchase days and value only repeat purchases (lifetimes' convention).
    select
        daily_revenue.as_of_date,
        daily_revenue.customer_id,
        avg(daily_revenue.day_revenue) as monetary_value
    from daily_revenue
    inner join order_history
        on order_history.as_of_date = daily_revenue.as_of_date
        and order_history.customer_id = daily_revenue.customer_id
    where daily_revenue.order_date > order_history.first_order_date
    group by daily_revenue.as_of_date, daily_revenue.customer_id
),

engagement as (
    select
        population.as_of_date,
        population.customer_id,
        count(*) as sessions_30d,
        sum(sessions.product_views) as product_views_30d,
        sum(sessions.add_to_carts) as add_to_carts_30d,
        max(sessions.started_at) as last_session_at
    from population
    inner join sessions
        on sessions.customer_id = population.customer_id
        and sessions.started_at < cast(population.as_of_date as timestamp)
        and sessions.started_at >= {{ dbt.dateadd('day', -30, 'cast(population.as_of_date as timestamp)') }}
    group by population.as_of_date, population.customer_id
),

campaign_history as (
    select
        population.as_of_date,
        population.customer_id,
        {%- set since_90d = dbt.dateadd('day', -90, 'cast(population.as_of_date as timestamp)') %}
        count(case when sends.starts_at >= {{ since_90d }} then sends.sent_at end) as sends_90d,
        count(case when sends.starts_at >= {{ since_90d }} and sends.is_opened then 1 end) as opens_90d,
        count(case when sends.starts_at >= {{ since_90d }} and sends.is_clicked then 1 end) as clicks_90d,
        {%- for channel in var('channels') %}
        count(case when sends.channel = '{{ channel }}' then sends.sent_at end) as sends_{{ channel }}_365d,
        count(case when sends.channel = '{{ channel }}' and sends.is_opened then 1 end) as opens_{{ channel }}_365d{{ "," if not loop.last }}
        {%- endfor %}
    from population
    inner join sends
        on sends.customer_id = population.customer_id
        -- Only campaigns that ended before the as-of date: their engagement is fully known by then.
        and sends.ends_at < cast(population.as_of_date as timestamp)
        and sends.starts_at >= {{ dbt.dateadd('day', -365, 'cast(population.as_of_date as timestamp)') }}
    group by population.as_of_date, population.customer_id
),

consent_history as (
    select
        population.as_of_date,
        population.customer_id,
        consents.channel,
        consents.is_opted_in,
        row_number() over (
            partition by population.as_of_date, population.customer_id, consents.channel
            order by consents.changed_at desc, consents.loaded_at desc
        ) as recency_rank
    from population
    inner join consents
        on consents.member_id = population.member_id
        and consents.changed_at < cast(population.as_of_date as timestamp)
),

consent_flags as (
    select
        as_of_date,
        customer_id,
        coalesce(bool_or(case when channel = 'email' then is_opted_in end), false) as consent_email,
        coalesce(bool_or(case when channel = 'push' then is_opted_in end), false) as consent_push,
        coalesce(bool_or(case when channel = 'sms' then is_opted_in end), false) as consent_sms,
        coalesce(bool_or(case when channel = 'kakao' then is_opted_in end), false) as consent_kakao
    from consent_history
    where recency_rank = 1
    group by as_of_date, customer_id
),

features as (
    select
        population.as_of_date,
        population.customer_id,
        population.member_id,
        coalesce(order_history.orders_total, 0) as orders_total,
        coalesce(order_history.revenue_total, 0) as revenue_total,
        coalesce(order_history.margin_total, 0) as margin_total,
        coalesce(return_history.returns_total, 0) as returns_total,
        coalesce(order_history.revenue_total, 0) - coalesce(return_history.returns_total, 0) as net_revenue_total,
        order_history.first_order_date,
        order_history.last_order_date,
        {{ dbt.datediff('order_history.last_order_date', 'population.as_of_date', 'day') }} as recency_days,
        coalesce(order_history.purchase_days, 0) - case when order_history.purchase_days > 0 then 1 else 0 end as frequency,
        coalesce({{ dbt.datediff('order_history.first_order_date', 'order_history.last_order_date', 'day') }}, 0) as recency,
        {{ dbt.datediff('order_history.first_order_date', 'population.as_of_date', 'day') }} as t,
        coalesce(repeat_value.monetary_value, 0) as monetary_value,
        {{ safe_divide('order_history.revenue_total', 'order_history.orders_total') }} as avg_order_value,
        {{ safe_divide('order_history.online_orders', 'order_history.orders_total') }} as online_order_share,
        coalesce(order_history.orders_30d, 0) as orders_30d,
        coalesce(order_history.orders_90d, 0) as orders_90d,
        coalesce(order_history.orders_365d, 0) as orders_365d,
        coalesce(order_history.revenue_90d, 0) as revenue_90d,
        coalesce(order_history.revenue_365d, 0) as revenue_365d,
        case when population.signup_at < cast(population.as_of_date as timestamp)
            then {{ dbt.datediff('population.signup_at', 'population.as_of_date', 'day') }}
        end as tenure_days,
        coalesce(engagement.sessions_30d, 0) as sessions_30d,
        coalesce(engagement.product_views_30d, 0) as product_views_30d,
        coalesce(engagement.add_to_carts_30d, 0) as add_to_carts_30d,
        coalesce(campaign_history.sends_90d, 0) as sends_90d,
        coalesce(campaign_history.opens_90d, 0) as opens_90d,
        coalesce(campaign_history.clicks_90d, 0) as clicks_90d,
        {%- for channel in var('channels') %}
        coalesce(campaign_history.sends_{{ channel }}_365d, 0) as sends_{{ channel }}_365d,
        coalesce(campaign_history.opens_{{ channel }}_365d, 0) as opens_{{ channel }}_365d,
        {%- endfor %}
        coalesce(consent_flags.consent_email, false) as consent_email,
        coalesce(consent_flags.consent_push, false) as consent_push,
        coalesce(consent_flags.consent_sms, false) as consent_sms,
        coalesce(consent_flags.consent_kakao, false) as consent_kakao
    from population
    left join order_history
        on order_history.as_of_date = population.as_of_date and order_history.customer_id = population.customer_id
    left join repeat_value
        on repeat_value.as_of_date = population.as_of_date and repeat_value.customer_id = population.customer_id
    left join return_history
        on return_history.as_of_date = population.as_of_date and return_history.customer_id = population.customer_id
    left join engagement
        on engagement.as_of_date = population.as_of_date and engagement.customer_id = population.customer_id
    left join campaign_history
        on campaign_history.as_of_date = population.as_of_date and campaign_history.customer_id = population.customer_id
    left join consent_flags
        on consent_flags.as_of_date = population.as_of_date and consent_flags.customer_id = population.customer_id
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
        consent_email,
        consent_push,
        consent_sms,
        consent_kakao,
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
