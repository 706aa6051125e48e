{#-
    Per campaign and arm: counts and rates, then each non-control arm compared with the control arm
    (two-proportion z-test on conversion with Newcombe's hybrid score 95% interval, which keeps its width
    when an arm has no conversions where the normal interval collapses to [0, 0]; Welch on revenue per customer).
    p-values are erfc(|z| / sqrt 2) itself, unrounded: 2 * (1 - Phi(z)) cancels to 0 in the tail, and 6 places
    publish a p of 1.5e-13 as 0.
-#}
with

sends as (
    select * from {{ ref('fct_campaign_sends') }}
),

arms as (
    select
        campaign_id,
        arm,
        count(*) as assigned,
        count(sent_at) as sent,
        count(case when is_delivered then 1 end) as delivered,
        count(case when is_opened then 1 end) as opened,
        coalesce(bool_and(channel in ('{{ var("channels_without_opens") | join("', '") }}')), false) as opens_untracked,
        count(case when is_clicked then 1 end) as clicked,
        count(case when is_redeemed then 1 end) as redeemed,
        count(case when is_unsubscribed then 1 end) as unsubscribed,
        count(case when is_converted then 1 end) as converted,
        sum(revenue) as revenue,
        sum(margin) as margin,
        sum(contact_cost) as cost,
        coalesce(sum(redeemed_discount), 0) as discount,
        avg(cast(revenue as float8)) as revenue_per_customer,
        avg(cast(margin as float8)) as margin_per_customer,
        var_samp(cast(revenue as float8)) as revenue_variance
    from sends
    group by campaign_id, arm
),

control as (
    select * from arms where arm = 'control'
),

compared as (
    select
        arms.*,
        {{ safe_divide('arms.converted', 'arms.assigned') }} as conversion_rate,
        {{ safe_divide('control.converted', 'control.assigned') }} as control_conversion_rate,
        control.assigned as control_assigned,
        control.converted as control_converted,
        control.revenue_per_customer as control_revenue_per_customer,
        control.margin_per_customer as control_margin_per_customer,
        control.revenue_variance as control_revenue_variance
    from arms
    left join control
        on control.campaign_id = arms.campaign_id
),

tested as (
    select
        *,
        conversion_rate - control_conversion_rate as conversion_lift,
        -- Newcombe (1998) method 10: the difference's bounds from each arm's Wilson bounds.
        sqrt(
            power(conversion_rate - {{ wilson_bound('converted', 'nullif(assigned, 0)', -1) }}, 2)
            + power({{ wilson_bound('control_converted', 'nullif(control_assigned, 0)', 1) }} - control_conversion_rate, 2)
        ) as conversion_lift_margin_low,
        sqrt(
            power({{ wilson_bound('converted', 'nullif(assigned, 0)', 1) }} - conversion_rate, 2)
            + power(control_conversion_rate - {{ wilson_bound('control_converted', 'nullif(control_assigned, 0)', -1) }}, 2)
        ) as conversion_lift_margin_high,
        -- Pooled standard error under H0 (equal rates) for the p-value.
        sqrt(
            {{ safe_divide('converted + control_converted', 'assigned + control_assigned') }}
            * (1 - {{ safe_divide('converted + control_converted', 'assigned + control_assigned') }})
            * (1.0 / nullif(assigned, 0) + 1.0 / nullif(control_assigned, 0))
        ) as conversion_pooled_se,
        revenue_per_customer - control_revenue_per_customer as revenue_lift,
        sqrt(revenue_variance / nullif(assigned, 0) + control_revenue_variance / nullif(control_assigned, 0)) as revenue_lift_se
    from compared
),

final as (
    select
        campaign_id,
        arm,
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
        {{ round_float('revenue_per_customer') }} as revenue_per_customer,
        case when not opens_untracked then {{ round_float(safe_divide('opened', 'sent')) }} end as open_rate,
        {{ round_float(safe_divide('clicked', 'sent')) }} as click_rate,
        {{ round_float(safe_divide('redeemed', 'assigned')) }} as redemption_rate,
        {{ round_float('conversion_rate') }} as conversion_rate,
        {{ round_float('control_conversion_rate') }} as control_conversion_rate,
        case when arm <> 'control' then {{ round_float('conversion_lift') }} end as conversion_lift,
        case when arm <> 'control' then {{ round_float('conversion_lift - conversion_lift_margin_low') }} end as conversion_lift_ci_low,
        case when arm <> 'control' then {{ round_float('conversion_lift + conversion_lift_margin_high') }} end as conversion_lift_ci_high,
        case when arm <> 'control' and conversion_pooled_se > 0
            then cast({{ _erfc_poly('abs(conversion_lift) / conversion_pooled_se / sqrt(2.0)') }} as float8)
        end as conversion_lift_p_value,
        case when arm <> 'control' then {{ round_float('revenue_lift') }} end as revenue_lift,
        case when arm <> 'control' then {{ round_float('revenue_lift - 1.959964 * revenue_lift_se') }} end as revenue_lift_ci_low,
        case when arm <> 'control' then {{ round_float('revenue_lift + 1.959964 * revenue_lift_se') }} end as revenue_lift_ci_high,
        case when arm <> 'control' and revenue_lift_se > 0
            then cast({{ _erfc_poly('abs(revenue_lift) / revenue_lift_se / sqrt(2.0)') }} as float8)
        end as revenue_lift_p_value,
        -- Incremental margin over the holdout (already net of discounts), net of contact cost, per unit the
        -- campaign cost (contacts and the discounts redeemed): the plan summary's expected ROI, as measured.
        case when arm <> 'control' then
            {{ round_float(safe_divide('(margin_per_customer - control_margin_per_customer) * assigned - cost', 'cost + discount')) }}
        end as roi
    from tested
)

select * from final
