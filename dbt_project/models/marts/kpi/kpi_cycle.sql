{#- One row per cycle: the headline KPIs the alert thresholds (expectations/kpi_alerts.yaml) watch. -#}
with

all_orders as (
    select * from {{ ref('fct_orders') }}
    where is_revenue
),

orders as (
    select * from all_orders
    where order_date >= {{ cycle_start_date() }}
),

first_orders as (
    -- From the whole history, so a customer's first order in the first cycle can still be a repeat.
    select customer_id, min(order_date) as first_order_date
    from all_orders
    where customer_id is not null
    group by customer_id
),

credit_notes as (
    -- Returns count in the cycle of their credit note, guests' included.
    select * from {{ ref('fct_orders') }}
    where is_return and order_date >= {{ cycle_start_date() }}
),

sessions as (
    select * from {{ ref('fct_sessions') }}
    where session_date >= {{ cycle_start_date() }}
),

order_cycles as (
    select
        floor({{ dbt.datediff(cycle_start_date(), 'orders.order_date', 'day') }} / {{ cycle_days() }}) as cycle_number,
        orders.customer_id,
        orders.total_amount,
        first_orders.first_order_date
    from orders
    left join first_orders on first_orders.customer_id = orders.customer_id
),

return_kpis as (
    select
        floor({{ dbt.datediff(cycle_start_date(), 'order_date', 'day') }} / {{ cycle_days() }}) as cycle_number,
        count(*) as returns,
        sum(total_amount) as returned_amount
    from credit_notes
    group by 1
),

session_cycles as (
    select
        floor({{ dbt.datediff(cycle_start_date(), 'session_date', 'day') }} / {{ cycle_days() }}) as cycle_number,
        has_purchase
    from sessions
),

order_kpis as (
    select
        cycle_number,
        count(*) as orders,
        sum(total_amount) as revenue,
        count(distinct customer_id) as customers,
        count(case when customer_id is null then 1 end) as guest_orders,
        -- Bought before the cycle began: the cycle's start is start_date + cycle_number x cycle_days.
        count(distinct case
            when first_order_date < {{ dbt.dateadd('day', 'cast(cycle_number as integer) * ' ~ cycle_days(), cycle_start_date()) }}
            then customer_id
        end) as repeat_customers
    from order_cycles
    group by cycle_number
),

session_kpis as (
    select
        cycle_number,
        count(*) as sessions,
        sum(case when has_purchase then 1 else 0 end) as converted_sessions
    from session_cycles
    group by cycle_number
),

final as (
    select
        cast({{ dbt.dateadd('day', 'cast(order_kpis.cycle_number as integer) * ' ~ cycle_days(), cycle_start_date()) }} as date)
            as cycle_start,
        cast(order_kpis.cycle_number as integer) as cycle_number,
        cast(order_kpis.orders as integer) as orders,
        cast(order_kpis.revenue as decimal(18, 4)) as revenue,
        cast(coalesce(return_kpis.returns, 0) as integer) as returns,
        cast(coalesce(return_kpis.returned_amount, 0) as decimal(18, 4)) as returned_amount,
        cast(order_kpis.revenue - coalesce(return_kpis.returned_amount, 0) as decimal(18, 4)) as net_revenue,
        cast({{ safe_divide('coalesce(return_kpis.returned_amount, 0)', 'order_kpis.revenue') }} as {{ type_double() }}) as return_rate,
        cast(order_kpis.guest_orders as integer) as guest_orders,
        cast(order_kpis.customers as integer) as customers,
        cast({{ safe_divide('order_kpis.revenue', 'order_kpis.orders') }} as {{ type_double() }}) as average_order_value,
        cast(order_kpis.repeat_customers as integer) as repeat_customers,
        cast({{ safe_divide('order_kpis.repeat_customers', 'order_kpis.customers') }} as {{ type_double() }}) as repurchase_rate,
        cast(coalesce(session_kpis.sessions, 0) as integer) as sessions,
        cast({{ safe_divide('session_kpis.converted_sessions', 'session_kpis.sessions') }} as {{ type_double() }}) as conversion_rate
    from order_kpis
    left join session_kpis on session_kpis.cycle_number = order_kpis.cycle_number
    left join return_kpis on return_kpis.cycle_number = order_kpis.cycle_number
)

select * from final
