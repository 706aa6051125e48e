{#-
    Every distinct combination of identifiers seen together on one record, across sources.
    Collapsing to distinct combinations first keeps the graph small: millions of events carry a few
    thousand (cookie, device, member) tuples.
-#}
with

crm_customers as (
    select * from {{ ref('stg_crm__customers') }}
),

web_events as (
    select * from {{ ref('stg_web__events') }}
),

shop_orders as (
    select * from {{ ref('stg_shop__orders') }}
),

pos_receipts as (
    select * from {{ ref('stg_pos__receipts') }}
),

campaign_sends as (
    select * from {{ ref('stg_marketing__campaign_sends') }}
),

consents as (
    select * from {{ ref('stg_crm__consents') }}
),

observations as (
    select
        'crm' as source_system,
        member_id,
        email_hash,
        phone_hash,
        cast(null as {{ type_text() }}) as cookie_id,
        cast(null as {{ type_text() }}) as device_id,
        coalesce(signup_at, updated_at) as observed_at
    from crm_customers

    union all

    select
        'web',
        member_id,
        cast(null as {{ type_text() }}),
        cast(null as {{ type_text() }}),
        cookie_id,
        device_id,
        occurred_at
    from web_events

    union all

    select
        'shop',
        member_id,
        email_hash,
        phone_hash,
        cookie_id,
        device_id,
        ordered_at
    from shop_orders

    union all

    select
        'pos',
        member_id,
        cast(null as {{ type_text() }}),
        cast(null as {{ type_text() }}),
        cast(null as {{ type_text() }}),
        cast(null as {{ type_text() }}),
        purchased_at
    from pos_receipts

    union all

    select
        'marketing',
        member_id,
        cast(null as {{ type_text() }}),
        cast(null as {{ type_text() }}),
        cast(null as {{ type_text() }}),
        cast(null as {{ type_text() }}),
        -- Holdout rows have no send time; the load time still dates the membership.
        coalesce(sent_at, loaded_at)
    from campaign_sends

    union all

    select
        'consent',
        member_id,
        cast(null as {{ type_text() }}),
        cast(null as {{ type_text() }}),
        cast(null as {{ type_text() }}),
        cast(null as {{ type_text() }}),
        changed_at
    from consents
),

records as (
    select
        member_id,
        email_hash,
        phone_hash,
        cookie_id,
        device_id,
        min(observed_at) as first_seen_at,
        max(observed_at) as last_seen_at,
        count(*) as n_observations,
        min(source_system) as first_source_system
    from observations
    where coalesce(member_id, email_hash, phone_hash, cookie_id, device_id) is not null
    group by member_id, email_hash, phone_hash, cookie_id, device_id
),

final as (
    select
        {{ dbt.hash("concat(coalesce(member_id, '~'), '|', coalesce(email_hash, '~'), '|', coalesce(phone_hash, '~'), '|', coalesce(cookie_id, '~'), '|', coalesce(device_id, '~'))") }} as record_key,
        *
    from records
)

select * from final
