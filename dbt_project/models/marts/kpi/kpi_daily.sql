with

orders as (
    select * from {{ ref('fct_orders') }}
    where is_revenue
),

daily as (
    select
        order_date,
        count(*) as orders,
        count(case when sales_channel = 'online' then 1 end) as online_orders,
        count(case when sales_channel = 'pos' then 1 end) as pos_orders,
        sum(total_amount) as revenue,
        sum(case when sales_channel = 'online' then total_amount else 0 end) as online_revenue,
        sum(case when sales_channel = 'pos' then total_amount else 0 end) as pos_revenue,
        sum(margin_amount) as margin,
        sum(discount_amount) as discounts,
        count(distinct customer_id) as active_customers,
        count(distinct case when customer_order_number = 1 then customer_id end) as new_customers
    from orders
    group by order_date
),

final as (
    select
        order_date,
        cast(orders as integer) as orders,
        cast(online_orders as integer) as online_orders,
        cast(pos_orders as integer) as pos_orders,
        cast(revenue as decimal(18, 4)) as revenue,
        cast(online_revenue as decimal(18, 4)) as online_revenue,
        cast(pos_revenue as decimal(18, 4)) as pos_revenue,
        cast(margin as decimal(18, 4)) as margin,
        cast(discounts as decimal(18, 4)) as discounts,
        cast({{ safe_divide('revenue', 'orders') }} as float8) as average_order_value,
        cast(active_customers as integer) as active_customers,
        cast(new_customers as integer) as new_customers
    from daily
)

select * from final
