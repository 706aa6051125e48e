{#- A view: a small source, re-read whole at less cost than incremental bookkeeping per key. -#}
{{ config(materialized='view') }}

with

source as (
    {{ live_raw(source('raw', 'campaigns')) }}
),

renamed as (
    select
        trim(campaign_id) as campaign_id,
        nullif(trim(campaign_name), '') as campaign_name,
        lower(trim(channel)) as channel,
        lower(trim(offer_type)) as offer_type,
        cast(offer_value as decimal(18, 4)) as offer_value,
        cast(coalesce(cost_per_contact, 0) as decimal(18, 4)) as cost_per_contact,
        cast(budget as decimal(18, 4)) as budget,
        starts_at,
        ends_at,
        nullif(trim(cycle_id), '') as cycle_id,
        _loaded_at,
        _file,
        _row_number
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by campaign_id
            order by {{ latest_loaded_first() }}
        ) as load_rank
    from renamed
    where campaign_id is not null
),

final as (
    select
        campaign_id,
        campaign_name,
        channel,
        offer_type,
        offer_value,
        cost_per_contact,
        budget,
        starts_at,
        ends_at,
        cycle_id,
        _loaded_at as loaded_at
    from ranked
    where load_rank = 1
)

select * from final
