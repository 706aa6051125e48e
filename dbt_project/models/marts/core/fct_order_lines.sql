with

order_lines as (
    select * from {{ ref('int_order_lines_unioned') }}
),

orders as (
    select * from {{ ref('int_orders_unioned') }}
),

final as (
    select
        order_lines.order_line_key,
        order_lines.order_key,
        order_lines.sales_channel,
        orders.customer_id,
        orders.ordered_at,
        orders.order_type,
        order_lines.line_number,
        order_lines.product_id,
        order_lines.category,
        order_lines.quantity,
        order_lines.unit_price,
        order_lines.discount_amount,
        order_lines.gross_amount,
        order_lines.net_amount,
        order_lines.cost_amount,
        cast(order_lines.net_amount - order_lines.cost_amount as decimal(18, 4)) as margin_amount,
        order_lines.is_margin_estimated
    from order_lines
    left join orders
        on orders.order_key = order_lines.order_key
)

select * from final
