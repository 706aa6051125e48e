{#- A view: a small source, re-read whole at less cost than incremental bookkeeping per key. -#}
{{ config(materialized='view') }}

with

source as (
    {{ live_raw(source('raw', 'products')) }}
),

renamed as (
    select
        trim(product_id) as product_id,
        nullif(trim(product_name), '') as product_name,
        lower(trim(category)) as category,
        cast(price as decimal(18, 4)) as price,
        cast(unit_cost as decimal(18, 4)) as unit_cost,
        updated_at,
        _loaded_at,
        _file,
        _row_number
    from source
),

ranked as (
    select
        *,
        -- A catalogue row is a product version: the newest change wins even when it arrives late.
        row_number() over (
            partition by product_id
            order by updated_at desc nulls last, {{ latest_loaded_first() }}
        ) as version_rank
    from renamed
    where product_id is not null
),

final as (
    select
        product_id,
        product_name,
        category,
        price,
        unit_cost,
        updated_at,
        _loaded_at as loaded_at
    from ranked
    where version_rank = 1
)

select * from final
