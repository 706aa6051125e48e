{#- Web and app engagement in the 30 days before each as-of date (sessions started before it). -#}
with

population as (
    select * from {{ ref('int_customer_population_asof') }}
),

sessions as (
    select * from {{ ref('fct_sessions') }}
    where customer_id is not null
),

final as (
    select
        population.as_of_date,
        population.customer_id,
        count(*) as sessions_30d,
        sum(sessions.product_views) as product_views_30d,
        sum(sessions.add_to_carts) as add_to_carts_30d
    from population
    inner join sessions
        on sessions.customer_id = population.customer_id
        and sessions.started_at < cast(population.as_of_date as timestamp)
        and sessions.started_at >= {{ dbt.dateadd('day', -30, 'cast(population.as_of_date as timestamp)') }}
    group by population.as_of_date, population.customer_id
)

select * from final
