{#-
    Outcome labels for the feature rows: what each customer did from the as-of date on. The label
    windows start exactly where the features' windows end (as_of_date, 00:00 UTC), and each label
    carries a completeness flag: a window that runs past the end of the loaded data is unknown, not
    "did not buy", so training must drop it.
-#}
with

features as (
    select as_of_date, customer_id from {{ ref('fct_customer_features') }}
),

orders as (
    -- The same orders the features count: revenue orders of a resolved customer.
    select customer_id, ordered_at, total_amount, margin_amount
    from {{ ref('fct_orders') }}
    where is_revenue and customer_id is not null
),

data_end as (
    -- The loaded data ends with the cycle of the newest order: ingest loads whole cycles.
    select
        {{ dbt.dateadd(
            'day',
            '(cast(floor(' ~ dbt.datediff(cycle_start_date(), 'max(ordered_at)', 'day') ~ ' / ' ~ cycle_days() ~ '.0) as integer) + 1) * ' ~ cycle_days(),
            cycle_start_date()
        ) }} as data_end_at
    from {{ ref('fct_orders') }}
),

windows as (
    select
        features.as_of_date,
        features.customer_id,
        cast(features.as_of_date as timestamp) as window_start_at,
        cast({{ dbt.dateadd('day', cycle_days(), 'features.as_of_date') }} as timestamp) as next_cycle_end_at,
        cast({{ dbt.dateadd('day', 28, 'features.as_of_date') }} as timestamp) as churn_window_end_at,
        cast(data_end.data_end_at as timestamp) as data_end_at
    from features
    cross join data_end
),

window_orders as (
    select
        windows.as_of_date,
        windows.customer_id,
        count(case when orders.ordered_at < windows.next_cycle_end_at then 1 end) as orders_next_cycle,
        sum(case when orders.ordered_at < windows.next_cycle_end_at then orders.total_amount else 0 end) as revenue_next_cycle,
        sum(case when orders.ordered_at < windows.next_cycle_end_at then orders.margin_amount else 0 end) as margin_next_cycle,
        count(*) as orders_next_28d
    from windows
    inner join orders
        on orders.customer_id = windows.customer_id
        and orders.ordered_at >= windows.window_start_at
        and orders.ordered_at < windows.churn_window_end_at
    group by windows.as_of_date, windows.customer_id
),

final as (
    select
        windows.as_of_date,
        cast(windows.as_of_date as {{ type_text() }}) as cycle_id,
        windows.customer_id,
        coalesce(window_orders.orders_next_cycle, 0) > 0 as purchased_next_cycle,
        cast(coalesce(window_orders.orders_next_cycle, 0) as integer) as orders_next_cycle,
        cast(coalesce(window_orders.revenue_next_cycle, 0) as decimal(18, 4)) as revenue_next_cycle,
        cast(coalesce(window_orders.margin_next_cycle, 0) as decimal(18, 4)) as margin_next_cycle,
        coalesce(window_orders.orders_next_28d, 0) = 0 as churned,
        windows.next_cycle_end_at <= windows.data_end_at as label_complete_next_cycle,
        windows.churn_window_end_at <= windows.data_end_at as label_complete_churn,
        windows.next_cycle_end_at,
        windows.churn_window_end_at,
        windows.data_end_at
    from windows
    left join window_orders
        on window_orders.as_of_date = windows.as_of_date and window_orders.customer_id = windows.customer_id
)

select * from final
