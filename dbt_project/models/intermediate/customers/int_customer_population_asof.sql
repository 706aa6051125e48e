{#- Who has features as of each date: members and buyers first seen before it. -#}
with

cycle_starts as (
    select * from {{ ref('int_cycle_starts') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

final as (
    select cycle_starts.as_of_date, customers.customer_id, customers.member_id, customers.signup_at
    from cycle_starts
    inner join customers
        on customers.first_seen_at < cast(cycle_starts.as_of_date as timestamp)
    where customers.is_member or customers.lifetime_orders > 0
)

select * from final
