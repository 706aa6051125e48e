{#-
    Campaign results: each assignment with its engagement and its outcomes inside the campaign window.
    Outcomes the send export reports itself (converted, revenue: an outcome-only export) take precedence over
    the orders the warehouse sees, which for such a retailer may hold none of them; margin is then estimated
    at default_margin_rate of the reported revenue, as for a product without a unit cost.
    The pre-period outcomes (the cuped_pre_period_days before the campaign starts, from the warehouse's orders)
    are the covariates CUPED adjusts lift with (ml/stats).
    Visits are the clickstream's sessions of the member's customer in the campaign window: a metric the holdout
    has too (a click on the message has no counterpart there). Where the clickstream holds no session at all in
    the window (a retailer without one, or days it did not send), is_visited is null, unknown rather than false.
-#}
with

sends as (
    select * from {{ ref('stg_marketing__campaign_sends') }}
),

campaigns as (
    select * from {{ ref('stg_marketing__campaigns') }}
),

campaign_events as (
    select * from {{ ref('stg_marketing__campaign_events') }}
),

redemptions as (
    select * from {{ ref('stg_marketing__coupon_redemptions') }}
),

resolved as (
    select * from {{ ref('int_identity_resolved') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

sessions as (
    select customer_id, started_at from {{ ref('fct_sessions') }}
),

engagement as (
    select
        campaign_id,
        member_id,
        bool_or(event_type = 'delivered') as is_delivered,
        bool_or(event_type = 'open') as is_opened,
        bool_or(event_type = 'click') as is_clicked,
        bool_or(event_type = 'unsubscribe') as is_unsubscribed,
        bool_or(event_type = 'bounce') as is_bounced
    from campaign_events
    group by campaign_id, member_id
),

redeemed as (
    select campaign_id, member_id, count(*) as redemptions, sum(discount_amount) as redeemed_discount
    from redemptions
    where campaign_id is not null and member_id is not null
    group by campaign_id, member_id
),

assigned as (
    select
        sends.campaign_id,
        sends.member_id,
        resolved.customer_id,
        sends.arm,
        sends.is_treatment,
        sends.variant_id,
        sends.sent_at,
        sends.assignment_probability,
        campaigns.channel,
        campaigns.offer_type,
        campaigns.starts_at,
        campaigns.ends_at,
        campaigns.cycle_id,
        case when sends.sent_at is not null then campaigns.cost_per_contact else 0 end as contact_cost,
        sends.reported_converted,
        sends.reported_revenue
    from sends
    inner join campaigns
        on campaigns.campaign_id = sends.campaign_id
    left join resolved
        on resolved.identifier_type = 'member_id' and resolved.identifier_value = sends.member_id
),

window_orders as (
    select
        assigned.campaign_id,
        assigned.member_id,
        count(*) as orders,
        sum(orders.total_amount) as revenue,
        sum(orders.margin_amount) as margin
    from assigned
    inner join orders
        on orders.customer_id = assigned.customer_id
        and orders.ordered_at >= assigned.starts_at
        and orders.ordered_at <= assigned.ends_at
        and orders.is_revenue
    group by assigned.campaign_id, assigned.member_id
),

pre_orders as (
    select
        assigned.campaign_id,
        assigned.member_id,
        count(*) as orders,
        sum(orders.total_amount) as revenue,
        sum(orders.margin_amount) as margin
    from assigned
    inner join orders
        on orders.customer_id = assigned.customer_id
        and orders.ordered_at >= assigned.starts_at - interval '{{ var("cuped_pre_period_days", 28) }} days'
        and orders.ordered_at < assigned.starts_at
        and orders.is_revenue
    group by assigned.campaign_id, assigned.member_id
),

visits_tracked as (
    select campaigns.campaign_id
    from campaigns
    where exists (
        select 1 from sessions
        where sessions.started_at >= campaigns.starts_at and sessions.started_at <= campaigns.ends_at
    )
),

window_visits as (
    select distinct assigned.campaign_id, assigned.member_id
    from assigned
    inner join sessions
        on sessions.customer_id = assigned.customer_id
        and sessions.started_at >= assigned.starts_at
        and sessions.started_at <= assigned.ends_at
),

pre_visits as (
    select distinct assigned.campaign_id, assigned.member_id
    from assigned
    inner join sessions
        on sessions.customer_id = assigned.customer_id
        and sessions.started_at >= assigned.starts_at - interval '{{ var("cuped_pre_period_days", 28) }} days'
        and sessions.started_at < assigned.starts_at
),

final as (
    select
        assigned.campaign_id,
        assigned.member_id,
        assigned.customer_id,
        assigned.arm,
        assigned.is_treatment,
        assigned.variant_id,
        assigned.channel,
        assigned.offer_type,
        assigned.cycle_id,
        assigned.starts_at,
        assigned.ends_at,
        assigned.sent_at,
        cast(assigned.assignment_probability as {{ type_double() }}) as assignment_probability,
        coalesce(engagement.is_delivered, false) as is_delivered,
        coalesce(engagement.is_opened, false) as is_opened,
        coalesce(engagement.is_clicked, false) as is_clicked,
        coalesce(engagement.is_unsubscribed, false) as is_unsubscribed,
        coalesce(engagement.is_bounced, false) as is_bounced,
        coalesce(redeemed.redemptions, 0) > 0 as is_redeemed,
        coalesce(assigned.reported_converted, coalesce(window_orders.orders, 0) > 0) as is_converted,
        cast(coalesce(window_orders.orders, 0) as integer) as orders,
        cast(coalesce(assigned.reported_revenue, window_orders.revenue, 0) as decimal(18, 4)) as revenue,
        cast(
            case
                when assigned.reported_revenue is not null
                    then assigned.reported_revenue * {{ var('default_margin_rate') }}
                else coalesce(window_orders.margin, 0)
            end as decimal(18, 4)
        ) as margin,
        case
            when assigned.reported_converted is not null or assigned.reported_revenue is not null then 'reported'
            else 'observed'
        end as outcome_source,
        cast(assigned.contact_cost as decimal(18, 4)) as contact_cost,
        cast(coalesce(redeemed.redeemed_discount, 0) as decimal(18, 4)) as redeemed_discount,
        assigned.reported_converted,
        cast(assigned.reported_revenue as decimal(18, 4)) as reported_revenue,
        case when visits_tracked.campaign_id is not null then window_visits.member_id is not null end as is_visited,
        pre_visits.member_id is not null as is_pre_visited,
        coalesce(pre_orders.orders, 0) > 0 as is_pre_converted,
        cast(coalesce(pre_orders.revenue, 0) as decimal(18, 4)) as pre_revenue,
        cast(coalesce(pre_orders.margin, 0) as decimal(18, 4)) as pre_margin
    from assigned
    left join engagement
        on engagement.campaign_id = assigned.campaign_id and engagement.member_id = assigned.member_id
    left join redeemed
        on redeemed.campaign_id = assigned.campaign_id and redeemed.member_id = assigned.member_id
    left join window_orders
        on window_orders.campaign_id = assigned.campaign_id and window_orders.member_id = assigned.member_id
    left join pre_orders
        on pre_orders.campaign_id = assigned.campaign_id and pre_orders.member_id = assigned.member_id
    left join visits_tracked
        on visits_tracked.campaign_id = assigned.campaign_id
    left join window_visits
        on window_visits.campaign_id = assigned.campaign_id and window_visits.member_id = assigned.member_id
    left join pre_visits
        on pre_visits.campaign_id = assigned.campaign_id and pre_visits.member_id = assigned.member_id
)

select * from final
