{#- A view: a small source, re-read whole at less cost than incremental bookkeeping per key. -#}
{{ config(materialized='view') }}

with

source as (
    {{ live_raw(source('raw', 'reviews')) }}
),

renamed as (
    select
        trim(review_id) as review_id,
        {{ clean_identifier('member_id') }} as member_id,
        trim(product_id) as product_id,
        cast(rating as integer) as rating,
        nullif(trim(review_text), '') as review_text,
        reviewed_at,
        _loaded_at,
        _file,
        _row_number
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by review_id
            order by {{ latest_loaded_first() }}
        ) as load_rank
    from renamed
    where review_id is not null
),

final as (
    select
        review_id,
        member_id,
        product_id,
        rating,
        review_text,
        reviewed_at,
        _loaded_at as loaded_at
    from ranked
    where load_rank = 1
)

select * from final
