{{ config(unique_key='event_id') }}

with

source as (
    {{ incremental_raw(source('raw', 'events'), ['event_id']) }}
),

renamed as (
    select
        trim(event_id) as event_id,
        lower(trim(event_type)) as event_type,
        occurred_at,
        lower(trim(platform)) as platform,
        {{ clean_identifier('cookie_id') }} as cookie_id,
        {{ clean_identifier('device_id') }} as device_id,
        {{ clean_identifier('member_id') }} as member_id,
        {{ clean_identifier('session_id') }} as tracker_session_id,
        nullif(trim(page_url), '') as page_url,
        {{ clean_identifier('product_id') }} as product_id,
        nullif(trim(search_query), '') as search_query,
        {{ clean_identifier('order_id') }} as order_id,
        nullif(lower(trim(utm_source)), '') as utm_source,
        nullif(lower(trim(utm_medium)), '') as utm_medium,
        nullif(trim(utm_campaign), '') as utm_campaign,
        _loaded_at,
        _file,
        _row_number
    from source
),

ranked as (
    select
        *,
        -- Trackers re-send events on retry: the same event_id is one event.
        row_number() over (
            partition by event_id
            order by {{ latest_loaded_first() }}
        ) as load_rank
    from renamed
    where event_id is not null and event_id <> ''
),

final as (
    select
        event_id,
        event_type,
        occurred_at,
        platform,
        cookie_id,
        device_id,
        member_id,
        tracker_session_id,
        page_url,
        product_id,
        search_query,
        order_id,
        utm_source,
        utm_medium,
        utm_campaign,
        _loaded_at as loaded_at
    from ranked
    where load_rank = 1
)

select * from final
