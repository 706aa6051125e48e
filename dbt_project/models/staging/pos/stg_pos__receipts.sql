{{ config(unique_key='receipt_id') }}

with

source as (
    {{ incremental_raw(source('raw', 'pos_receipts'), ['receipt_id']) }}
),

renamed as (
    select
        trim(receipt_id) as receipt_id,
        trim(store_id) as store_id,
        purchased_at,
        {{ clean_identifier('member_id') }} as member_id,
        -- A credit note may come signed either way; its type gives the sign, staging keeps the size.
        cast(abs(total_amount) as decimal(18, 4)) as total_amount,
        cast(coalesce(discount_amount, 0) as decimal(18, 4)) as discount_amount,
        nullif(upper(trim(coupon_code)), '') as coupon_code,
        lower(trim(payment_method)) as payment_method,
        coalesce(trim(receipt_type), 'sale') as receipt_type,
        nullif(trim(original_receipt_id), '') as original_receipt_id,
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
        row_number() over (
            partition by receipt_id
            order by {{ latest_loaded_first() }}
        ) as load_rank
    from renamed
    where receipt_id is not null
),

final as (
    select
        receipt_id,
        store_id,
        purchased_at,
        member_id,
        total_amount,
        discount_amount,
        coupon_code,
        payment_method,
        receipt_type,
        original_receipt_id,
        country,
        currency,
        _loaded_at as loaded_at
    from ranked
    where load_rank = 1
)

select * from final
