{#-
    The as-of dates of the point-in-time features: every cycle start (start_date + k * cycle_days) up to
    the one right after the last order, which scores the next campaign.
-#}
with

orders as (
    select * from {{ ref('fct_orders') }}
    where is_revenue and customer_id is not null
),

data_end as (
    select max(ordered_at) as last_ordered_at from orders
),

cycle_starts as (
    select {{ cycle_starts_until(dbt.dateadd('day', cycle_days(), 'data_end.last_ordered_at')) }} as cycle_start_at
    from data_end
),

final as (
    select cast(cycle_start_at as date) as as_of_date
    from cycle_starts
)

select * from final
