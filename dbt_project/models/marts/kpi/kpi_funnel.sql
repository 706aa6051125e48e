with

sessions as (
    select * from {{ ref('fct_sessions') }}
),

daily as (
    select
        session_date,
        coalesce(platform, 'unknown') as platform,
        count(*) as sessions,
        -- A session reached a step when it logged that step or any later one: a buy-now purchase or a
        -- cart filled from a list skips events, and counting steps alone put step rates above 1.
        count(case when product_views + add_to_carts + checkouts + purchases > 0 then 1 end) as product_view_sessions,
        count(case when add_to_carts + checkouts + purchases > 0 then 1 end) as add_to_cart_sessions,
        count(case when checkouts + purchases > 0 then 1 end) as checkout_sessions,
        count(case when purchases > 0 then 1 end) as purchase_sessions
    from sessions
    group by session_date, coalesce(platform, 'unknown')
),

final as (
    select
        session_date,
        platform,
        cast(sessions as integer) as sessions,
        cast(product_view_sessions as integer) as product_view_sessions,
        cast(add_to_cart_sessions as integer) as add_to_cart_sessions,
        cast(checkout_sessions as integer) as checkout_sessions,
        cast(purchase_sessions as integer) as purchase_sessions,
        {{ round_float(safe_divide('product_view_sessions', 'sessions')) }} as product_view_rate,
        {{ round_float(safe_divide('add_to_cart_sessions', 'product_view_sessions')) }} as cart_rate,
        {{ round_float(safe_divide('checkout_sessions', 'add_to_cart_sessions')) }} as checkout_rate,
        {{ round_float(safe_divide('purchase_sessions', 'checkout_sessions')) }} as purchase_rate,
        {{ round_float(safe_divide('purchase_sessions', 'sessions')) }} as session_conversion_rate
    from daily
)

select * from final
