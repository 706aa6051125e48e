{#-
    Each randomised send of fct_action_sends with what the frequency cap learns fatigue from (ml/frequency.py
    fit_fatigue): the customer's RFM segment at the campaign's as-of date, and the customer's randomised
    assignments (either arm) of the 30 days before the campaign's start, planned and sent; sent is counted as
    int_customer_contacts_asof counts contacts_last_30d.
-#}
with

sends as (
    select campaign_id, member_id, customer_id, as_of_date, starts_at, is_treatment, is_converted
    from {{ ref('fct_action_sends') }}
    where customer_id is not null and arm is not null
),

planned as (
    select customer_id, coalesce(sent_at, starts_at) as planned_at, sent_at
    from {{ ref('fct_campaign_sends') }}
    where customer_id is not null and arm is not null
),

counted as (
    select
        sends.campaign_id,
        sends.member_id,
        sends.customer_id,
        sends.as_of_date,
        sends.is_treatment,
        sends.is_converted,
        count(planned.planned_at) as planned_before,
        count(planned.sent_at) as contacts_before
    from sends
    left join planned
        on planned.customer_id = sends.customer_id
        and planned.planned_at < sends.starts_at
        and planned.planned_at >= {{ dbt.dateadd('day', -30, 'sends.starts_at') }}
    group by
        sends.campaign_id, sends.member_id, sends.customer_id, sends.as_of_date, sends.is_treatment,
        sends.is_converted
),

final as (
    select
        counted.campaign_id,
        counted.member_id,
        counted.customer_id,
        counted.as_of_date,
        coalesce(features.rfm_segment, 'unknown') as segment,
        cast(counted.planned_before as integer) as planned_before,
        cast(counted.contacts_before as integer) as contacts_before,
        counted.is_treatment,
        counted.is_converted
    from counted
    left join {{ ref('fct_customer_features') }} as features
        on features.customer_id = counted.customer_id
        and features.as_of_date = counted.as_of_date
)

select * from final
