{#-
    Campaign sends with the offer's value, which names the action (<offer>__<channel>) an uplift
    model learns: fct_campaign_sends carries the offer type only, and pct10 and pct20 share it.
-#}
with

sends as (
    select * from {{ ref('fct_campaign_sends') }}
),

campaigns as (
    select campaign_id, offer_value from {{ ref('stg_marketing__campaigns') }}
),

final as (
    select
        sends.campaign_id,
        sends.member_id,
        sends.customer_id,
        sends.cycle_id,
        cast(sends.cycle_id as date) as as_of_date,
        sends.arm,
        sends.is_treatment,
        sends.channel,
        sends.offer_type,
        cast(campaigns.offer_value as {{ type_double() }}) as offer_value,
        sends.assignment_probability,
        sends.starts_at,
        sends.ends_at,
        sends.is_converted,
        sends.revenue,
        sends.margin,
        sends.is_unsubscribed,
        sends.sent_at
    from sends
    inner join campaigns
        on campaigns.campaign_id = sends.campaign_id
)

select * from final
