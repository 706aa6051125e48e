with

orders as (
    select * from {{ ref('int_orders_unioned') }}
),

order_lines as (
    select * from {{ ref('int_order_lines_unioned') }}
),

line_totals as (
    select
        order_key,
        count(*) as line_count,
        sum(quantity) as units,
        sum(gross_amount) as gross_amount,
        sum(cost_amount) as cost_amount
    from order_lines
    group by order_key
),

final as (
    select
        orders.order_key,
        orders.order_id,
        orders.sales_channel,
        orders.customer_id,
        orders.member_id,
        orders.ordered_at,
        cast(orders.ordered_at as date) as order_date,
        orders.status,
        orders.status = 'placed' as is_revenue,
        orders.total_amount,
        orders.discount_amount,
        orders.shipping_amount,
        orders.coupon_code,
        orders.store_id,
        orders.payment_method,
        cast(coalesce(line_totals.units, orders.item_count) as integer) as item_count,
        cast(coalesce(line_totals.line_count, 0) as integer) as line_count,
        cast(line_totals.gross_amount as decimal(18, 4)) as gross_amount,
        cast(line_totals.cost_amount as decimal(18, 4)) as cost_amount,
        -- Shipping charged passes through to the carrier, so it is not margin.
        cast(orders.total_amount - orders.shipping_amount - line_totals.cost_amount as decimal(18, 4)) as margin_amount,
        cast(case when orders.customer_id is null then null else row_number() over (
            partition by orders.customer_id order by orders.ordered_at, orders.order_key
        ) end as integer) as customer_order_number
    from orders
    left join line_totals
        on line_totals.order_key = orders.order_key
)

select * from final
