{#-
    One row per day with sales or credit notes. Guests' orders count everywhere but in the customer
    counts; returns count on the day of their credit note.
-#}
with

documents as (
    select * from {{ ref('fct_orders') }}
    where is_revenue or is_return
),

daily as (
    select
        order_date,
        count(case when is_revenue then 1 end) as orders,
        count(case when is_revenue and sales_channel = 'online' then 1 end) as online_orders,
        count(case when is_revenue and sales_channel = 'pos' then 1 end) as pos_orders,
        sum(case when is_revenue then total_amount else 0 end) as revenue,
        sum(case when is_revenue and sales_channel = 'online' then total_amount else 0 end) as online_revenue,
        sum(case when is_revenue and sales_channel = 'pos' then total_amount else 0 end) as pos_revenue,
        sum(case when is_revenue then margin_amount end) as margin,
        sum(case when is_revenue then discount_amount else 0 end) as discounts,
        count(distinct case when is_revenue then customer_id end) as active_customers,
        count(distinct case when is_revenue and customer_order_number = 1 then customer_id end) as new_customers,
        count(case when is_revenue and customer_id is null then 1 end) as guest_orders,
        count(case when is_return then 1 end) as returns,
        sum(case when is_return then total_amount else 0 end) as returned_amount,
        sum(net_revenue_amount) as net_revenue,
        sum(net_margin_amount) as net_margin
    from documents
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
        cast({{ safe_divide('revenue', 'orders') }} as {{ type_double() }}) as average_order_value,
        cast(active_customers as integer) as active_customers,
        cast(new_customers as integer) as new_customers,
        cast(guest_orders as integer) as guest_orders,
        cast(returns as integer) as returns,
        cast(returned_amount as decimal(18, 4)) as returned_amount,
        cast(net_revenue as decimal(18, 4)) as net_revenue,
        cast(net_margin as decimal(18, 4)) as net_margin,
        cast({{ safe_divide('returned_amount', 'revenue') }} as {{ type_double() }}) as return_rate
    from daily
)

select * from final
