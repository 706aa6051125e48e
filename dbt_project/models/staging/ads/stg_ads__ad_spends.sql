{#- A view: a small source, re-read whole at less cost than incremental bookkeeping per key. -#}
{{ config(materialized='view') }}

with

source as (
    {{ live_raw(source('raw', 'ad_spend')) }}
),

renamed as (
    select
        spend_date,
        lower(trim(channel)) as channel,
        nullif(trim(campaign_id), '') as campaign_id,
        cast(spend as decimal(18, 4)) as spend,
        cast(impressions as bigint) as impressions,
        cast(clicks as bigint) as clicks,
        _loaded_at,
        _file,
        _row_number
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by spend_date, channel, campaign_id
            order by {{ latest_loaded_first() }}
        ) as load_rank
    from renamed
    where spend_date is not null
),

final as (
    select
        spend_date,
        channel,
        campaign_id,
        spend,
        impressions,
        clicks,
        _loaded_at as loaded_at
    from ranked
    where load_rank = 1
)

select * from final
