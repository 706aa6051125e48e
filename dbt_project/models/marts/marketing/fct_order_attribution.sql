{#-
    Multi-touch attribution: each order's marketing touches (sessions with a UTM source, of the same
    customer, in the var('attribution_lookback_days') before the order) with the credit four rules give.
-#}
with

orders as (
    select * from {{ ref('fct_orders') }}
    where is_revenue and customer_id is not null
),

sessions as (
    select * from {{ ref('fct_sessions') }}
    where utm_source is not null and customer_id is not null
),

touches as (
    select
        orders.order_key,
        orders.order_date,
        orders.customer_id,
        orders.total_amount,
        sessions.session_key,
        sessions.started_at as touched_at,
        sessions.utm_source as channel,
        sessions.utm_campaign as campaign_id,
        row_number() over (partition by orders.order_key order by sessions.started_at, sessions.session_key) as touch_number,
        count(*) over (partition by orders.order_key) as touch_count
    from orders
    inner join sessions
        on sessions.customer_id = orders.customer_id
        and sessions.started_at <= orders.ordered_at
        and sessions.started_at >= {{ dbt.dateadd('day', -1 * var('attribution_lookback_days'), 'orders.ordered_at') }}
),

credited as (
    select
        *,
        case when touch_number = 1 then 1.0 else 0.0 end as first_touch_credit,
        case when touch_number = touch_count then 1.0 else 0.0 end as last_touch_credit,
        1.0 / touch_count as linear_credit,
        -- Position-based (U-shaped): 40% first, 40% last, 20% shared by the middle touches.
        case
            when touch_count = 1 then 1.0
            when touch_count = 2 then 0.5
            when touch_number = 1 or touch_number = touch_count then 0.4
            else 0.2 / (touch_count - 2)
        end as position_credit
    from touches
),

final as (
    select
        order_key || ':' || cast(touch_number as {{ type_text() }}) as attribution_key,
        order_key,
        order_date,
        customer_id,
        session_key,
        touched_at,
        channel,
        campaign_id,
        cast(touch_number as integer) as touch_number,
        cast(touch_count as integer) as touch_count,
        cast(first_touch_credit as {{ type_double() }}) as first_touch_credit,
        cast(last_touch_credit as {{ type_double() }}) as last_touch_credit,
        cast(linear_credit as {{ type_double() }}) as linear_credit,
        cast(position_credit as {{ type_double() }}) as position_credit,
        cast(total_amount * first_touch_credit as decimal(18, 4)) as first_touch_revenue,
        cast(total_amount * last_touch_credit as decimal(18, 4)) as last_touch_revenue,
        cast(total_amount * linear_credit as decimal(18, 4)) as linear_revenue,
        cast(total_amount * position_credit as decimal(18, 4)) as position_revenue
    from credited
)

select * from final
