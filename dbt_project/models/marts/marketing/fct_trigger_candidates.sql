{#-
    The events trigger journeys start from (campaign_loop.actions.TRIGGERS), one row per event: a session that
    viewed or carted products and bought nothing (browse_abandoned, cart_abandoned), a purchase, each member's
    last purchase (win-back) and each member's signup (membership anniversary). Sessions and purchases reach
    back var('trigger_lookback_days') from the newest session or order in the warehouse; the rules' delays,
    windows, caps, consent and holdout are applied by ml/triggers.py at the moment it runs.
    next_order_at is the customer's first revenue order after the event: an abandoned cart followed by an order
    is no longer abandoned.
-#}
with

sessions as (
    select * from {{ ref('fct_sessions') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
    where is_revenue and customer_id is not null
),

customers as (
    select * from {{ ref('dim_customers') }}
),

data_end as (
    select max(newest) as newest_at
    from (
        select max(ended_at) as newest from sessions
        union all
        select max(ordered_at) as newest from orders
    ) as newest_events
),

horizon as (
    select {{ dbt.dateadd('day', -1 * var('trigger_lookback_days'), 'newest_at') }} as since
    from data_end
),

abandoned as (
    select
        case when sessions.add_to_carts > 0 then 'cart_abandoned' else 'browse_abandoned' end as trigger_event,
        sessions.session_key as event_key,
        sessions.customer_id,
        sessions.ended_at as event_at
    from sessions
    cross join horizon
    where sessions.customer_id is not null
        and not sessions.has_purchase
        and sessions.product_views + sessions.add_to_carts > 0
        and sessions.ended_at >= horizon.since
),

purchases as (
    select
        'purchase' as trigger_event,
        orders.order_id as event_key,
        orders.customer_id,
        orders.ordered_at as event_at
    from orders
    cross join horizon
    where orders.ordered_at >= horizon.since
),

last_purchases as (
    select
        'last_purchase' as trigger_event,
        customer_id as event_key,
        customer_id,
        max(ordered_at) as event_at
    from orders
    group by customer_id
),

signups as (
    select
        'signup' as trigger_event,
        customer_id as event_key,
        customer_id,
        signup_at as event_at
    from customers
    where signup_at is not null
),

events as (
    select * from abandoned
    union all
    select * from purchases
    union all
    select * from last_purchases
    union all
    select * from signups
),

next_orders as (
    select
        events.trigger_event,
        events.event_key,
        min(orders.ordered_at) as next_order_at
    from events
    inner join orders
        on orders.customer_id = events.customer_id
        and orders.ordered_at > events.event_at
    group by events.trigger_event, events.event_key
),

final as (
    select
        events.trigger_event,
        events.event_key,
        events.customer_id,
        customers.member_id,
        events.event_at,
        next_orders.next_order_at
    from events
    inner join customers
        on customers.customer_id = events.customer_id
    left join next_orders
        on next_orders.trigger_event = events.trigger_event
        and next_orders.event_key = events.event_key
    -- A trigger addresses a member ID: a customer known by a cookie alone cannot be reached.
    where customers.member_id is not null
)

select * from final
