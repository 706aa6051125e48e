{#-
    Value tiers at every as-of date: the tier the customer's last 365 days qualify for, and the tier they hold
    once the grace rule is applied. The hold is a window maximum, not a recursion, so it runs on any engine:
    a customer holds the best tier they qualified for at any of the last value_tier_grace_cycles as-of dates.
-#}
with

features as (
    select * from {{ ref('fct_customer_features') }}
),

qualified as (
    select
        as_of_date,
        cycle_id,
        customer_id,
        member_id,
        revenue_365d,
        orders_365d,
        {{ value_tier_rank('revenue_365d', 'orders_365d') }} as qualified_tier_rank
    from features
),

held as (
    -- The features have a row at every as-of date from a customer's first, so N rows are N cycles.
    select
        qualified.*,
        max(qualified_tier_rank) over (
            partition by customer_id
            order by as_of_date
            rows between {{ var('value_tier_grace_cycles') | int - 1 }} preceding and current row
        ) as value_tier_rank
    from qualified
),

final as (
    select
        as_of_date,
        cycle_id,
        customer_id,
        member_id,
        cast(revenue_365d as decimal(18, 4)) as revenue_365d,
        cast(orders_365d as integer) as orders_365d,
        cast(qualified_tier_rank as integer) as qualified_tier_rank,
        cast({{ value_tier_name('qualified_tier_rank') }} as {{ type_text() }}) as qualified_tier,
        cast(value_tier_rank as integer) as value_tier_rank,
        cast({{ value_tier_name('value_tier_rank') }} as {{ type_text() }}) as value_tier
    from held
)

select * from final
