{#-
    Customer journeys for data-driven attribution (ml/attribution.py): per customer and cycle, the channels of
    their marketing touches (sessions with a UTM source) in time order, up to their first revenue order after
    the first touch in the cycle (the conversion), or all of them when there is none.
-#}
with

sessions as (
    select * from {{ ref('fct_sessions') }}
    where utm_source is not null and customer_id is not null and session_date >= {{ cycle_start_date() }}
),

orders as (
    select * from {{ ref('fct_orders') }}
    where is_revenue and customer_id is not null and order_date >= {{ cycle_start_date() }}
),

touches as (
    select
        customer_id,
        session_key,
        started_at,
        utm_source as channel,
        cast(floor({{ dbt.datediff(cycle_start_date(), 'session_date', 'day') }} / {{ cycle_days() }}) as integer)
            as cycle_number
    from sessions
),

journey_starts as (
    select customer_id, cycle_number, min(started_at) as first_touched_at
    from touches
    group by customer_id, cycle_number
),

cycle_orders as (
    select
        customer_id,
        ordered_at,
        total_amount,
        cast(floor({{ dbt.datediff(cycle_start_date(), 'order_date', 'day') }} / {{ cycle_days() }}) as integer)
            as cycle_number
    from orders
),

conversions as (
    select
        journey_starts.customer_id,
        journey_starts.cycle_number,
        min(cycle_orders.ordered_at) as converted_at
    from journey_starts
    inner join cycle_orders
        on cycle_orders.customer_id = journey_starts.customer_id
        and cycle_orders.cycle_number = journey_starts.cycle_number
        and cycle_orders.ordered_at >= journey_starts.first_touched_at
    group by journey_starts.customer_id, journey_starts.cycle_number
),

conversion_revenue as (
    -- Orders at the same instant as the conversion are one basket.
    select conversions.customer_id, conversions.cycle_number, sum(cycle_orders.total_amount) as revenue
    from conversions
    inner join cycle_orders
        on cycle_orders.customer_id = conversions.customer_id
        and cycle_orders.cycle_number = conversions.cycle_number
        and cycle_orders.ordered_at = conversions.converted_at
    group by conversions.customer_id, conversions.cycle_number
),

paths as (
    select
        touches.customer_id,
        touches.cycle_number,
        {{ string_agg_ordered('touches.channel', "'>'", 'touches.started_at, touches.session_key') }} as path,
        count(*) as touches
    from touches
    left join conversions
        on conversions.customer_id = touches.customer_id and conversions.cycle_number = touches.cycle_number
    where conversions.converted_at is null or touches.started_at <= conversions.converted_at
    group by touches.customer_id, touches.cycle_number
),

final as (
    select
        paths.customer_id || ':' || cast(paths.cycle_number as {{ type_text() }}) as journey_key,
        paths.customer_id,
        paths.cycle_number,
        paths.path,
        cast(paths.touches as integer) as touches,
        conversions.converted_at is not null as converted,
        conversions.converted_at,
        cast(coalesce(conversion_revenue.revenue, 0) as decimal(18, 4)) as revenue
    from paths
    left join conversions
        on conversions.customer_id = paths.customer_id and conversions.cycle_number = paths.cycle_number
    left join conversion_revenue
        on conversion_revenue.customer_id = paths.customer_id and conversion_revenue.cycle_number = paths.cycle_number
)

select * from final
