{#-
    When each customer reads: their campaign opens and clicks, and the sends they were sent, counted by the
    local hour (var('timezone'), the retailer's zone, Settings timezone) they happened in. ml/send_time.py
    picks each customer's send hour from it. Raw times are naive UTC: "at time zone 'UTC'" makes them
    aware, the second "at time zone" gives the local wall clock (the same SQL on DuckDB and PostgreSQL).
-#}
with

events as (
    select * from {{ ref('stg_marketing__campaign_events') }}
    where event_type in ('open', 'click')
),

sends as (
    select * from {{ ref('stg_marketing__campaign_sends') }}
    where sent_at is not null
),

resolved as (
    select * from {{ ref('int_identity_resolved') }}
    where identifier_type = 'member_id'
),

engaged as (
    select
        resolved.customer_id,
        cast(extract(hour from {{ local_time('events.occurred_at') }}) as integer) as local_hour,
        sum(case when events.event_type = 'open' then 1 else 0 end) as opens,
        sum(case when events.event_type = 'click' then 1 else 0 end) as clicks,
        max(events.occurred_at) as last_engaged_at
    from events
    inner join resolved
        on resolved.identifier_value = events.member_id
    group by 1, 2
),

sent as (
    select
        resolved.customer_id,
        cast(extract(hour from {{ local_time('sends.sent_at') }}) as integer) as local_hour,
        count(*) as sends
    from sends
    inner join resolved
        on resolved.identifier_value = sends.member_id
    group by 1, 2
),

final as (
    select
        coalesce(engaged.customer_id, sent.customer_id) || ':' || cast(coalesce(engaged.local_hour, sent.local_hour) as {{ type_text() }})
            as engagement_hour_key,
        coalesce(engaged.customer_id, sent.customer_id) as customer_id,
        cast(coalesce(engaged.local_hour, sent.local_hour) as integer) as local_hour,
        cast(coalesce(sent.sends, 0) as integer) as sends,
        cast(coalesce(engaged.opens, 0) as integer) as opens,
        cast(coalesce(engaged.clicks, 0) as integer) as clicks,
        engaged.last_engaged_at
    from engaged
    full outer join sent
        on sent.customer_id = engaged.customer_id and sent.local_hour = engaged.local_hour
)

select * from final
