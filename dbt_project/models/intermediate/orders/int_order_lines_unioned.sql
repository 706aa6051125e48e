{#-
    Online order lines and store receipt lines as one list, costed with the catalogue. A product without
    a unit_cost (or missing from the catalogue) is costed at (1 - default_margin_rate) of the line's net
    amount, and the line says its margin is estimated.
-#}
with

shop_order_lines as (
    select * from {{ ref('stg_shop__order_lines') }}
),

pos_receipt_lines as (
    select * from {{ ref('stg_pos__receipt_lines') }}
),

products as (
    select * from {{ ref('stg_catalog__products') }}
),

lines as (
    select 'online:' || order_id as order_key, 'online' as sales_channel, line_number, product_id, quantity, unit_price, discount_amount
    from shop_order_lines
    union all
    select 'pos:' || receipt_id, 'pos', line_number, product_id, quantity, unit_price, discount_amount
    from pos_receipt_lines
),

final as (
    select
        lines.order_key || ':' || cast(lines.line_number as {{ type_text() }}) as order_line_key,
        lines.order_key,
        lines.sales_channel,
        lines.line_number,
        lines.product_id,
        products.category,
        lines.quantity,
        lines.unit_price,
        lines.discount_amount,
        cast(lines.quantity * lines.unit_price as decimal(18, 4)) as gross_amount,
        cast(lines.quantity * lines.unit_price - lines.discount_amount as decimal(18, 4)) as net_amount,
        cast(coalesce(
            lines.quantity * products.unit_cost,
            (lines.quantity * lines.unit_price - lines.discount_amount) * (1 - {{ var('default_margin_rate') | float }})
        ) as decimal(18, 4)) as cost_amount,
        products.unit_cost is null as is_margin_estimated
    from lines
    left join products
        on products.product_id = lines.product_id
)

select * from final
