{#- Sessions (int_web_sessions, incremental) with their customer under today's identity resolution. -#}
with

sessions as (
    select * from {{ ref('int_web_sessions') }}
),

resolved as (
    select * from {{ ref('int_identity_resolved') }}
),

final as (
    select
        sessions.session_key,
        sessions.visitor_id,
        -- A login inside the session identifies the person even on a shared household device.
        coalesce(by_member.customer_id, by_device.customer_id, by_cookie.customer_id) as customer_id,
        sessions.member_id,
        sessions.member_id is not null as is_logged_in,
        sessions.platform,
        sessions.started_at,
        sessions.ended_at,
        cast(sessions.started_at as date) as session_date,
        {{ dbt.datediff('sessions.started_at', 'sessions.ended_at', 'second') }} as duration_seconds,
        sessions.landing_page,
        sessions.utm_source,
        sessions.utm_medium,
        sessions.utm_campaign,
        sessions.order_id,
        cast(sessions.n_events as integer) as n_events,
        cast(sessions.page_views as integer) as page_views,
        cast(sessions.product_views as integer) as product_views,
        cast(sessions.searches as integer) as searches,
        cast(sessions.add_to_carts as integer) as add_to_carts,
        cast(sessions.checkouts as integer) as checkouts,
        cast(sessions.purchases as integer) as purchases,
        sessions.purchases > 0 as has_purchase
    from sessions
    left join resolved as by_member
        on by_member.identifier_type = 'member_id' and by_member.identifier_value = sessions.member_id
    left join resolved as by_device
        on by_device.identifier_type = 'device_id' and by_device.identifier_value = sessions.device_id
    left join resolved as by_cookie
        on by_cookie.identifier_type = 'cookie_id' and by_cookie.identifier_value = sessions.cookie_id
)

select * from final
