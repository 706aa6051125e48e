{#- Online order lines and store receipt lines as one list, costed with the catalogue. -#}
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
        lines.order_key || ':' || cast(lines.line_number as varchar) as order_line_key,
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
        cast(lines.quantity * products.unit_cost as decimal(18, 4)) as cost_amount
    from lines
    left join products
        on products.product_id = lines.product_id
)

select * from final
