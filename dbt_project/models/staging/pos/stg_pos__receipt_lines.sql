{{ config(unique_key='receipt_id') }}

with

source as (
    {{ incremental_raw(source('raw', 'pos_receipt_lines'), ['receipt_id']) }}
),

renamed as (
    select
        trim(receipt_id) as receipt_id,
        cast(line_number as integer) as line_number,
        trim(product_id) as product_id,
        -- A credit note's line may come negative; its document's type gives the sign, staging the size.
        cast(abs(quantity) as integer) as quantity,
        cast(unit_price as decimal(18, 4)) as unit_price,
        cast(coalesce(discount_amount, 0) as decimal(18, 4)) as discount_amount,
        _loaded_at,
        _file,
        _row_number
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by receipt_id, line_number
            order by {{ latest_loaded_first() }}
        ) as load_rank
    from renamed
    where receipt_id is not null
),

final as (
    select
        receipt_id,
        line_number,
        product_id,
        quantity,
        unit_price,
        discount_amount,
        _loaded_at as loaded_at
    from ranked
    where load_rank = 1
)

select * from final
