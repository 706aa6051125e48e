{#-
    What the campaign rules read besides the features, as of each date (ml/decide/, trigger journeys):
    sends of the 30 days before it (by send time, the campaign's start for the holdout), whether one of
    them unsubscribed the customer, and per channel of var('channels') whether the customer's newest send
    on it before the date bounced (a hard bounce closes the channel until a later send is delivered).
    Only customers with a send in the window or a bounce in force: the mart fills the others.
-#}
with

as_of_dates as (
    select as_of_date, cast(as_of_date as timestamp) as as_of_at from {{ ref('int_cycle_starts') }}
),

sends as (
    select
        customer_id,
        channel,
        sent_at,
        coalesce(sent_at, starts_at) as contacted_at,
        is_unsubscribed,
        is_bounced
    from {{ ref('fct_campaign_sends') }}
    where customer_id is not null
),

recent as (
    select
        as_of_dates.as_of_date,
        sends.customer_id,
        count(sends.sent_at) as contacts_last_30d,
        max(case when sends.is_unsubscribed then 1 else 0 end) = 1 as unsubscribed_recently
    from as_of_dates
    inner join sends
        on sends.contacted_at < as_of_dates.as_of_at
        and sends.contacted_at >= {{ dbt.dateadd('day', -30, 'as_of_dates.as_of_at') }}
    group by as_of_dates.as_of_date, sends.customer_id
),

delivered as (
    -- Each send's state holds from its send time until the next send on the channel: a range join
    -- per as-of date then finds the newest send before it without scanning the whole history per date.
    select
        customer_id,
        channel,
        sent_at,
        is_bounced,
        lead(sent_at) over (partition by customer_id, channel order by sent_at, is_bounced) as next_sent_at
    from sends
    where sent_at is not null
),

bounced as (
    select
        as_of_dates.as_of_date,
        delivered.customer_id,
        {%- for channel in var('channels') %}
        max(case when delivered.channel = '{{ channel }}' then 1 else 0 end) = 1 as bounced_{{ channel }}{{ "," if not loop.last }}
        {%- endfor %}
    from as_of_dates
    inner join delivered
        on delivered.is_bounced
        and delivered.sent_at < as_of_dates.as_of_at
        and (delivered.next_sent_at is null or delivered.next_sent_at >= as_of_dates.as_of_at)
    group by as_of_dates.as_of_date, delivered.customer_id
),

customers as (
    select as_of_date, customer_id from recent
    union
    select as_of_date, customer_id from bounced
),

final as (
    select
        customers.as_of_date,
        customers.customer_id,
        coalesce(recent.contacts_last_30d, 0) as contacts_last_30d,
        coalesce(recent.unsubscribed_recently, false) as unsubscribed_recently,
        {%- for channel in var('channels') %}
        coalesce(bounced.bounced_{{ channel }}, false) as bounced_{{ channel }}{{ "," if not loop.last }}
        {%- endfor %}
    from customers
    left join recent
        on recent.as_of_date = customers.as_of_date and recent.customer_id = customers.customer_id
    left join bounced
        on bounced.as_of_date = customers.as_of_date and bounced.customer_id = customers.customer_id
)

select * from final
