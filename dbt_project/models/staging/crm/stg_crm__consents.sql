{{ config(unique_key='member_id') }}

with

source as (
    {{ incremental_raw(source('raw', 'consents'), ['member_id']) }}
),

renamed as (
    select
        {{ clean_identifier('member_id') }} as member_id,
        lower(trim(channel)) as channel,
        lower(trim(status)) as status,
        lower(trim(status)) = 'opt_in' as is_opted_in,
        changed_at,
        nullif(lower(trim(source)), '') as consent_source,
        _loaded_at,
        _file,
        _row_number
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by member_id, channel, changed_at
            order by {{ latest_loaded_first() }}
        ) as load_rank
    from renamed
    where member_id is not null
),

final as (
    select
        member_id,
        channel,
        status,
        is_opted_in,
        changed_at,
        consent_source,
        _loaded_at as loaded_at
    from ranked
    where load_rank = 1
)

select * from final
