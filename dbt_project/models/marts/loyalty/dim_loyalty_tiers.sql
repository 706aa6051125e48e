with

tiers as (
    select * from {{ ref('fct_loyalty_tiers') }}
),

changes as (
    select * from {{ ref('fct_loyalty_tier_changes') }}
),

newest as (
    -- The as-of date the next campaign is scored at (fct_customer_features' newest).
    select max(as_of_date) as as_of_date from tiers
),

last_change as (
    select customer_id, max(as_of_date) as tier_since
    from changes
    group by customer_id
),

final as (
    select
        tiers.customer_id,
        tiers.member_id,
        tiers.as_of_date,
        tiers.value_tier,
        tiers.value_tier_rank,
        tiers.qualified_tier,
        tiers.revenue_365d,
        tiers.orders_365d,
        last_change.tier_since
    from tiers
    inner join newest
        on tiers.as_of_date = newest.as_of_date
    left join last_change
        on last_change.customer_id = tiers.customer_id
)

select * from final
