{#-
    Sessions rebuilt from events, without the customer (fct_sessions adds it, so identity changes never
    leave a stale customer_id in an incremental table): a visitor's new session starts after
    var('session_timeout_minutes') idle.

    Incremental: a visitor with events staged since the last build (re-sent or one batch late included)
    has their sessions recomputed from a cut-off: the earlier of the first new event and the start of
    the first stored session that ended less than the timeout before it. Every event before the cut-off
    is more than the timeout before every event after it, so the sessions before it cannot change. The
    visitor's sessions before the cut-off are copied from this table, and all the visitor's rows are
    replaced (delete+insert by visitor_id).
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='visitor_id',
) }}

with

events as (
    select
        *,
        coalesce('cookie:' || cookie_id, 'device:' || device_id) as visitor_id
    from {{ ref('stg_web__events') }}
    where coalesce(cookie_id, device_id) is not null
),

{% if is_incremental() %}
new_events as (
    select visitor_id, min(occurred_at) as first_new_at
    from events
    where loaded_at >= (select max(loaded_at) from {{ this }})
    group by visitor_id
),

cutoffs as (
    select
        new_events.visitor_id,
        min(case
            when stored.started_at is not null and stored.started_at < new_events.first_new_at then stored.started_at
            else new_events.first_new_at
        end) as cutoff_at
    from new_events
    left join {{ this }} as stored
        on stored.visitor_id = new_events.visitor_id
        and stored.ended_at >= {{ dbt.dateadd('minute', -1 * var('session_timeout_minutes'), 'new_events.first_new_at') }}
    group by new_events.visitor_id
),

scoped_events as (
    select events.*
    from events
    inner join cutoffs
        on cutoffs.visitor_id = events.visitor_id
        and events.occurred_at >= cutoffs.cutoff_at
),
{% else %}
scoped_events as (
    select * from events
),
{% endif %}

visitor_events as (
    select
        *,
        lag(occurred_at) over (partition by visitor_id order by occurred_at, event_id) as previous_occurred_at
    from scoped_events
),

numbered as (
    select
        *,
        sum(case
            when previous_occurred_at is null then 1
            when occurred_at > {{ dbt.dateadd('minute', var('session_timeout_minutes'), 'previous_occurred_at') }} then 1
            else 0
        end) over (
            partition by visitor_id order by occurred_at, event_id rows between unbounded preceding and current row
        ) as session_number
    from visitor_events
),

ordered as (
    select
        *,
        row_number() over (partition by visitor_id, session_number order by occurred_at, event_id) as event_position
    from numbered
),

sessions as (
    select
        visitor_id,
        session_number,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        min(case when event_position = 1 then event_id end) as first_event_id,
        min(case when event_position = 1 then platform end) as platform,
        min(case when event_position = 1 then page_url end) as landing_page,
        min(cookie_id) as cookie_id,
        min(device_id) as device_id,
        min(member_id) as member_id,
        min(utm_source) as utm_source,
        min(utm_medium) as utm_medium,
        min(utm_campaign) as utm_campaign,
        min(order_id) as order_id,
        max(loaded_at) as loaded_at,
        count(*) as n_events,
        count(case when event_type = 'page_view' then 1 end) as page_views,
        count(case when event_type = 'product_view' then 1 end) as product_views,
        count(case when event_type = 'search' then 1 end) as searches,
        count(case when event_type = 'add_to_cart' then 1 end) as add_to_carts,
        count(case when event_type = 'checkout' then 1 end) as checkouts,
        count(case when event_type = 'purchase' then 1 end) as purchases
    from ordered
    group by visitor_id, session_number
),

final as (
    select
        {{ dbt.hash("visitor_id || '|' || first_event_id") }} as session_key,
        visitor_id,
        cookie_id,
        device_id,
        member_id,
        platform,
        started_at,
        ended_at,
        landing_page,
        utm_source,
        utm_medium,
        utm_campaign,
        order_id,
        cast(n_events as integer) as n_events,
        cast(page_views as integer) as page_views,
        cast(product_views as integer) as product_views,
        cast(searches as integer) as searches,
        cast(add_to_carts as integer) as add_to_carts,
        cast(checkouts as integer) as checkouts,
        cast(purchases as integer) as purchases,
        loaded_at
    from sessions
)

select * from final
{% if is_incremental() %}
union all
select stored.*
from {{ this }} as stored
inner join cutoffs
    on cutoffs.visitor_id = stored.visitor_id
    and stored.started_at < cutoffs.cutoff_at
{% endif %}
