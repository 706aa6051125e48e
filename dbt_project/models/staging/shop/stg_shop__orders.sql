{#- Never a view: the HMAC UDF exists only in dbt's connection, and hashing once is cheaper. -#}
{{ config(unique_key='order_id') }}

with

source as (
    {{ incremental_raw(source('raw', 'orders'), ['order_id']) }}
),

renamed as (
    select
        trim(order_id) as order_id,
        ordered_at,
        {{ clean_identifier('member_id') }} as member_id,
        {{ pseudonymize_pii('email', normalize_email('email')) }} as email_hash,
        {{ pseudonymize_pii('phone', normalize_phone('phone')) }} as phone_hash,
        {{ clean_identifier('cookie_id') }} as cookie_id,
        {{ clean_identifier('device_id') }} as device_id,
        -- A credit note may come signed either way; its type gives the sign, staging keeps the size.
        cast(abs(total_amount) as decimal(18, 4)) as total_amount,
        cast(coalesce(discount_amount, 0) as decimal(18, 4)) as discount_amount,
        cast(abs(coalesce(shipping_amount, 0)) as decimal(18, 4)) as shipping_amount,
        nullif(upper(trim(coupon_code)), '') as coupon_code,
        cast(abs(item_count) as integer) as item_count,
        coalesce(lower(trim(status)), 'placed') as status,
        coalesce(trim(order_type), 'sale') as order_type,
        nullif(trim(original_order_id), '') as original_order_id,
        nullif(upper(trim(country)), '') as country,
        nullif(upper(trim(currency)), '') as currency,
        _loaded_at,
        _file,
        _row_number
    from source
),

ranked as (
    select
        *,
        -- A later row for the same order is a status update (cancelled, returned) or a re-send.
        row_number() over (
            partition by order_id
            order by {{ latest_loaded_first() }}
        ) as load_rank
    from renamed
    where order_id is not null and order_id <> ''
),

final as (
    select
        order_id,
        ordered_at,
        member_id,
        email_hash,
        phone_hash,
        cookie_id,
        device_id,
        total_amount,
        discount_amount,
        shipping_amount,
        coupon_code,
        item_count,
        status,
        order_type,
        original_order_id,
        country,
        currency,
        _loaded_at as loaded_at
    from ranked
    where load_rank = 1
)

select * from final
