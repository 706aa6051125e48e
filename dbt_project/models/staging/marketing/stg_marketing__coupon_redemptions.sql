{#- A view: a small source, re-read whole at less cost than incremental bookkeeping per key. -#}
{{ config(materialized='view') }}

with

source as (
    {{ live_raw(source('raw', 'coupon_redemptions')) }}
),

renamed as (
    select
        trim(redemption_id) as redemption_id,
        upper(trim(coupon_code)) as coupon_code,
        nullif(trim(campaign_id), '') as campaign_id,
        {{ clean_identifier('member_id') }} as member_id,
        nullif(trim(order_id), '') as order_id,
        nullif(trim(receipt_id), '') as receipt_id,
        redeemed_at,
        cast(discount_amount as decimal(18, 4)) as discount_amount,
        _loaded_at,
        _file,
        _row_number
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by redemption_id
            order by {{ latest_loaded_first() }}
        ) as load_rank
    from renamed
    where redemption_id is not null
),

final as (
    select
        redemption_id,
        coupon_code,
        campaign_id,
        member_id,
        order_id,
        receipt_id,
        redeemed_at,
        discount_amount,
        _loaded_at as loaded_at
    from ranked
    where load_rank = 1
)

select * from final
