{#- One row per cycle: the headline KPIs the alert thresholds (expectations/kpi_alerts.yaml) watch. -#}
with

orders as (
    select * from {{ ref('fct_orders') }}
    where is_revenue and order_date >= {{ cycle_start_date() }}
),

sessions as (
    select * from {{ ref('fct_sessions') }}
    where session_date >= {{ cycle_start_date() }}
),

order_cycles as (
    select
        floor({{ dbt.datediff(cycle_start_date(), 'order_date', 'day') }} / {{ cycle_days() }}) as cycle_number,
        customer_id,
        total_amount
    from orders
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
        count(distinct customer_id) as customers
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
        cast(order_kpis.customers as integer) as customers,
        cast(coalesce(session_kpis.sessions, 0) as integer) as sessions,
        cast({{ safe_divide('session_kpis.converted_sessions', 'session_kpis.sessions') }} as float8) as conversion_rate
    from order_kpis
    left join session_kpis on session_kpis.cycle_number = order_kpis.cycle_number
)

select * from final
