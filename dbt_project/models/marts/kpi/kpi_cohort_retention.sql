with

orders as (
    select * from {{ ref('fct_orders') }}
    where is_revenue and customer_id is not null
),

first_orders as (
    select customer_id, min(ordered_at) as first_ordered_at
    from orders
    group by customer_id
),

activity as (
    select distinct
        cast({{ dbt.date_trunc('month', 'first_orders.first_ordered_at') }} as date) as cohort_month,
        first_orders.customer_id,
        {{ dbt.datediff(dbt.date_trunc('month', 'first_orders.first_ordered_at'), dbt.date_trunc('month', 'orders.ordered_at'), 'month') }} as months_since_first_order
    from orders
    inner join first_orders
        on first_orders.customer_id = orders.customer_id
),

cohorts as (
    select cohort_month, count(distinct customer_id) as cohort_customers
    from activity
    group by cohort_month
),

final as (
    select
        activity.cohort_month,
        cast(activity.months_since_first_order as integer) as months_since_first_order,
        cast(cohorts.cohort_customers as integer) as cohort_customers,
        cast(count(distinct activity.customer_id) as integer) as active_customers,
        {{ round_float(safe_divide('count(distinct activity.customer_id)', 'cohorts.cohort_customers')) }} as retention_rate
    from activity
    inner join cohorts
        on cohorts.cohort_month = activity.cohort_month
    group by activity.cohort_month, activity.months_since_first_order, cohorts.cohort_customers
)

select * from final
