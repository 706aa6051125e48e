{#-
    One row per sales document: an online order, a store receipt, or a credit note (a return or a
    cancellation, order_type) pointing at its original. Amounts are sizes, never negative; the signed
    net_revenue_amount and net_margin_amount are what revenue nets to (docs/warehouse.md, "Revenue,
    returns and margins").
-#}
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
        sum(cost_amount) as cost_amount,
        -- bool_or over a line flag, portable to PostgreSQL.
        max(case when is_margin_estimated then 1 else 0 end) = 1 as is_margin_estimated
    from order_lines
    group by order_key
),

documents as (
    select
        orders.*,
        orders.order_type = 'sale' and orders.status = 'placed' as is_revenue,
        -- A credit note nets against revenue unless its original already counts in none (cancelled or
        -- returned by status): subtracting it again would count the return twice.
        orders.order_type <> 'sale' and orders.status = 'placed' and (
            originals.order_key is null or (originals.order_type = 'sale' and originals.status = 'placed')
        ) as is_return
    from orders
    left join orders as originals
        on originals.order_key = orders.original_order_key
),

final as (
    select
        documents.order_key,
        documents.order_id,
        documents.sales_channel,
        documents.customer_id,
        documents.member_id,
        documents.ordered_at,
        cast(documents.ordered_at as date) as order_date,
        documents.status,
        documents.is_revenue,
        documents.order_type,
        documents.original_order_key,
        documents.original_order_id,
        documents.is_return,
        documents.total_amount,
        documents.discount_amount,
        documents.shipping_amount,
        documents.coupon_code,
        documents.store_id,
        documents.payment_method,
        documents.country,
        documents.currency,
        cast(coalesce(line_totals.units, documents.item_count) as integer) as item_count,
        cast(coalesce(line_totals.line_count, 0) as integer) as line_count,
        cast(line_totals.gross_amount as decimal(18, 4)) as gross_amount,
        cast(line_totals.cost_amount as decimal(18, 4)) as cost_amount,
        -- Shipping charged passes through to the carrier, so it is not margin.
        cast(documents.total_amount - documents.shipping_amount - line_totals.cost_amount as decimal(18, 4)) as margin_amount,
        line_totals.is_margin_estimated,
        cast(case
            when documents.is_revenue then documents.total_amount
            when documents.is_return then -documents.total_amount
            else 0
        end as decimal(18, 4)) as net_revenue_amount,
        cast(case
            when documents.is_revenue then documents.total_amount - documents.shipping_amount - line_totals.cost_amount
            when documents.is_return then -(documents.total_amount - documents.shipping_amount - line_totals.cost_amount)
            else 0
        end as decimal(18, 4)) as net_margin_amount,
        -- Credit notes are not purchases: they take no place in the customer's sequence of orders.
        cast(case when documents.customer_id is null or documents.order_type <> 'sale' then null else row_number() over (
            partition by documents.customer_id, documents.order_type = 'sale' order by documents.ordered_at, documents.order_key
        ) end as integer) as customer_order_number
    from documents
    left join line_totals
        on line_totals.order_key = documents.order_key
)

select * from final
