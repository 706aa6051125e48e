{{ config(unique_key=['campaign_id', 'member_id']) }}

with

source as (
    {{ incremental_raw(source('raw', 'campaign_events'), ['campaign_id', 'member_id']) }}
),

renamed as (
    select
        trim(campaign_id) as campaign_id,
        {{ clean_identifier('member_id') }} as member_id,
        lower(trim(event_type)) as event_type,
        occurred_at,
        _loaded_at,
        _file,
        _row_number
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by campaign_id, member_id, event_type, occurred_at
            order by {{ latest_loaded_first() }}
        ) as load_rank
    from renamed
    where campaign_id is not null and member_id is not null
),

final as (
    select
        campaign_id,
        member_id,
        event_type,
        occurred_at,
        _loaded_at as loaded_at
    from ranked
    where load_rank = 1
)

select * from final
