{#-
    Append-only log of customer assignments: one row each time an identifier gets a customer_id it did
    not have at the previous build (first assignment, or a merge into another customer). Lets ml/ and
    exports translate IDs they stored earlier.
-#}
{{ config(materialized='incremental', on_schema_change='append_new_columns') }}

with

resolved as (
    select * from {{ ref('int_identity_resolved') }}
),

{% if is_incremental() %}
logged as (
    select
        identifier_type,
        identifier_value,
        customer_id,
        row_number() over (
            partition by identifier_type, identifier_value
            order by recorded_at desc, customer_id desc
        ) as recency_rank
    from {{ this }}
),

previous as (
    select identifier_type, identifier_value, customer_id
    from logged
    where recency_rank = 1
),
{% endif %}

changes as (
    select
        resolved.identifier_type,
        resolved.identifier_value,
        {% if is_incremental() %}previous.customer_id{% else %}cast(null as {{ type_text() }}){% endif %} as previous_customer_id,
        resolved.customer_id
    from resolved
    {% if is_incremental() %}
    left join previous
        on previous.identifier_type = resolved.identifier_type
        and previous.identifier_value = resolved.identifier_value
    where previous.customer_id is distinct from resolved.customer_id
    {% endif %}
),

final as (
    select
        identifier_type,
        identifier_value,
        previous_customer_id,
        customer_id,
        case when previous_customer_id is null then 'assigned' else 'merged' end as change_type,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp) as recorded_at
    from changes
)

select * from final
