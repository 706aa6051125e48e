with

tiers as (
    select * from {{ ref('fct_loyalty_tiers') }}
),

sequenced as (
    select
        tiers.*,
        lag(value_tier_rank) over (partition by customer_id order by as_of_date) as previous_tier_rank
    from tiers
),

changes as (
    select *
    from sequenced
    where previous_tier_rank is null or previous_tier_rank <> value_tier_rank
),

final as (
    select
        as_of_date,
        cycle_id,
        customer_id,
        member_id,
        cast({{ value_tier_name('previous_tier_rank') }} as {{ type_text() }}) as from_tier,
        value_tier as to_tier,
        cast(case
            when previous_tier_rank is null then 'entered'
            when value_tier_rank > previous_tier_rank then 'upgrade'
            else 'downgrade'
        end as {{ type_text() }}) as change_type,
        cast(case
            when previous_tier_rank is null then 'first_assessment'
            when value_tier_rank > previous_tier_rank then 'qualified'
            else 'grace_expired'
        end as {{ type_text() }}) as reason,
        revenue_365d,
        orders_365d
    from changes
)

select * from final
