{#-
    Purchase history as of each date: orders and credit notes strictly before it, so a row for cycle k
    can train a model scored on cycle k without leaking what happened during cycle k. RFM and BG/NBD
    inputs (frequency, recency, t and monetary_value in purchase days, lifetimes' convention).
-#}
with

population as (
    select * from {{ ref('int_customer_population_asof') }}
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

final as (
    select
        population.as_of_date,
        population.customer_id,
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
        coalesce(order_history.revenue_365d, 0) as revenue_365d
    from population
    left join order_history
        on order_history.as_of_date = population.as_of_date and order_history.customer_id = population.customer_id
    left join repeat_value
        on repeat_value.as_of_date = population.as_of_date and repeat_value.customer_id = population.customer_id
    left join return_history
        on return_history.as_of_date = population.as_of_date and return_history.customer_id = population.customer_id
    -- Customers with neither an order nor a credit note before the date have no purchase history.
    where order_history.customer_id is not null or return_history.customer_id is not null
)

select * from final
