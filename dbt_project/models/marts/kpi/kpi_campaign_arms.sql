{#-
    Per campaign, arm and variant (variant_id: null when the arm tested one creative): counts, rates and the
    sufficient statistics of each outcome (sum, sum of squares, and the cross-products with its pre-period
    value and, for revenue per order, with orders). Lift,
    intervals and p-values are not computed here: ml/stats infers them from these sums, once, for
    measure, kpi_campaign_lift and the cycle report (docs/decisions/0001-lift-computed-in-python.md).
-#}
with

sends as (
    select * from {{ ref('fct_campaign_sends') }}
),

units as (
    select
        campaign_id,
        arm,
        variant_id,
        sent_at,
        channel,
        is_delivered,
        is_opened,
        is_clicked,
        is_redeemed,
        is_unsubscribed,
        case when is_converted then 1.0 else 0.0 end as converted,
        case when is_pre_converted then 1.0 else 0.0 end as pre_converted,
        case when is_visited then 1.0 when is_visited is not null then 0.0 end as visited,
        case when is_pre_visited then 1.0 else 0.0 end as pre_visited,
        cast(revenue as {{ type_double() }}) as revenue,
        cast(margin as {{ type_double() }}) as margin,
        cast(orders as {{ type_double() }}) as orders,
        cast(pre_revenue as {{ type_double() }}) as pre_revenue,
        cast(pre_margin as {{ type_double() }}) as pre_margin,
        contact_cost,
        redeemed_discount,
        assignment_probability
    from sends
),

arms as (
    select
        campaign_id,
        arm,
        variant_id,
        count(*) as assigned,
        count(sent_at) as sent,
        count(case when is_delivered then 1 end) as delivered,
        count(case when is_opened then 1 end) as opened,
        coalesce(bool_and(channel in ('{{ var("channels_without_opens") | join("', '") }}')), false) as opens_untracked,
        count(case when is_clicked then 1 end) as clicked,
        count(case when is_redeemed then 1 end) as redeemed,
        count(case when is_unsubscribed then 1 end) as unsubscribed,
        sum(converted) as converted,
        sum(pre_converted) as pre_converted,
        sum(converted * pre_converted) as converted_x_pre,
        coalesce(sum(visited), 0) as visited,
        count(visited) as visits_tracked,
        sum(pre_visited) as pre_visited,
        coalesce(sum(visited * pre_visited), 0) as visited_x_pre,
        sum(revenue) as revenue,
        sum(revenue * revenue) as revenue_sq,
        sum(pre_revenue) as pre_revenue,
        sum(pre_revenue * pre_revenue) as pre_revenue_sq,
        sum(revenue * pre_revenue) as revenue_x_pre,
        sum(margin) as margin,
        sum(margin * margin) as margin_sq,
        sum(pre_margin) as pre_margin,
        sum(pre_margin * pre_margin) as pre_margin_sq,
        sum(margin * pre_margin) as margin_x_pre,
        sum(orders) as orders,
        sum(orders * orders) as orders_sq,
        sum(revenue * orders) as revenue_x_orders,
        sum(contact_cost) as cost,
        coalesce(sum(redeemed_discount), 0) as discount,
        count(assignment_probability) as with_probability,
        avg(assignment_probability) as assignment_probability
    from units
    group by campaign_id, arm, variant_id
),

final as (
    select
        campaign_id,
        arm,
        variant_id,
        cast(assigned as integer) as assigned,
        cast(sent as integer) as sent,
        cast(delivered as integer) as delivered,
        cast(opened as integer) as opened,
        cast(clicked as integer) as clicked,
        cast(redeemed as integer) as redeemed,
        cast(unsubscribed as integer) as unsubscribed,
        cast(converted as integer) as converted,
        cast(revenue as decimal(18, 4)) as revenue,
        cast(margin as decimal(18, 4)) as margin,
        cast(cost as decimal(18, 4)) as cost,
        cast(discount as decimal(18, 4)) as discount,
        {{ round_float(safe_divide('revenue', 'assigned')) }} as revenue_per_customer,
        case when not opens_untracked then {{ round_float(safe_divide('opened', 'sent')) }} end as open_rate,
        {{ round_float(safe_divide('clicked', 'sent')) }} as click_rate,
        {{ round_float(safe_divide('redeemed', 'assigned')) }} as redemption_rate,
        {{ round_float(safe_divide('converted', 'assigned')) }} as conversion_rate,
        {{ round_float(safe_divide('visited', 'visits_tracked')) }} as visit_rate,
        cast(pre_converted as integer) as pre_converted,
        cast(converted_x_pre as integer) as converted_x_pre,
        cast(revenue_sq as {{ type_double() }}) as revenue_sq,
        cast(pre_revenue as {{ type_double() }}) as pre_revenue,
        cast(pre_revenue_sq as {{ type_double() }}) as pre_revenue_sq,
        cast(revenue_x_pre as {{ type_double() }}) as revenue_x_pre,
        cast(margin_sq as {{ type_double() }}) as margin_sq,
        cast(pre_margin as {{ type_double() }}) as pre_margin,
        cast(pre_margin_sq as {{ type_double() }}) as pre_margin_sq,
        cast(margin_x_pre as {{ type_double() }}) as margin_x_pre,
        cast(orders as integer) as orders,
        cast(orders_sq as {{ type_double() }}) as orders_sq,
        cast(revenue_x_orders as {{ type_double() }}) as revenue_x_orders,
        cast(visited as integer) as visited,
        cast(visits_tracked as integer) as visits_tracked,
        cast(pre_visited as integer) as pre_visited,
        cast(visited_x_pre as integer) as visited_x_pre,
        cast(with_probability as integer) as with_probability,
        cast(assignment_probability as {{ type_double() }}) as assignment_probability
    from arms
)

select * from final
