{#-
    Campaign sends received and their engagement as of each date: only campaigns that ended before it,
    whose opens and clicks are fully known by then. 90-day totals, and per channel of var('channels')
    the year's sends and opens (ml/engagement.py's channel preference).
-#}
with

population as (
    select * from {{ ref('int_customer_population_asof') }}
),

sends as (
    select * from {{ ref('fct_campaign_sends') }}
),

final as (
    select
        population.as_of_date,
        population.customer_id,
        {%- set since_90d = dbt.dateadd('day', -90, 'cast(population.as_of_date as timestamp)') %}
        count(case when sends.starts_at >= {{ since_90d }} then sends.sent_at end) as sends_90d,
        count(case when sends.starts_at >= {{ since_90d }} and sends.is_opened then 1 end) as opens_90d,
        count(case when sends.starts_at >= {{ since_90d }} and sends.is_clicked then 1 end) as clicks_90d,
        {%- for channel in var('channels') %}
        count(case when sends.channel = '{{ channel }}' then sends.sent_at end) as sends_{{ channel }}_365d,
        count(case when sends.channel = '{{ channel }}' and sends.is_opened then 1 end) as opens_{{ channel }}_365d{{ "," if not loop.last }}
        {%- endfor %}
    from population
    inner join sends
        on sends.customer_id = population.customer_id
        and sends.ends_at < cast(population.as_of_date as timestamp)
        and sends.starts_at >= {{ dbt.dateadd('day', -365, 'cast(population.as_of_date as timestamp)') }}
    group by population.as_of_date, population.customer_id
)

select * from final
