{#-
    Each member's opt-in per channel of var('channels') as of each date: the latest consent change
    before it; a channel without a change before the date is not consented.
-#}
with

population as (
    select * from {{ ref('int_customer_population_asof') }}
),

consents as (
    select * from {{ ref('stg_crm__consents') }}
),

consent_history as (
    select
        population.as_of_date,
        population.customer_id,
        consents.channel,
        consents.is_opted_in,
        row_number() over (
            partition by population.as_of_date, population.customer_id, consents.channel
            order by consents.changed_at desc, consents.loaded_at desc
        ) as recency_rank
    from population
    inner join consents
        on consents.member_id = population.member_id
        and consents.changed_at < cast(population.as_of_date as timestamp)
),

final as (
    select
        as_of_date,
        customer_id,
        {%- for channel in var('channels') %}
        coalesce(bool_or(case when channel = '{{ channel }}' then is_opted_in end), false) as consent_{{ channel }}{{ "," if not loop.last }}
        {%- endfor %}
    from consent_history
    where recency_rank = 1
    group by as_of_date, customer_id
)

select * from final
