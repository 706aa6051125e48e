{{ config(unique_key=['campaign_id', 'member_id']) }}

with

source as (
    {{ incremental_raw(source('raw', 'campaign_sends'), ['campaign_id', 'member_id']) }}
),

renamed as (
    select
        trim(campaign_id) as campaign_id,
        {{ clean_identifier('member_id') }} as member_id,
        lower(trim(arm)) as arm,
        lower(trim(arm)) <> 'control' as is_treatment,
        -- The holdout receives no creative: a variant named on it would split the one control in two.
        case when lower(trim(arm)) <> 'control' then nullif(trim(variant_id), '') end as variant_id,
        sent_at,
        -- float8: dbt's type_float is DuckDB's 4-byte FLOAT, which moves 1/3 enough to shift an SRM p-value.
        cast(assignment_probability as {{ type_double() }}) as assignment_probability,
        converted as reported_converted,
        cast(revenue as decimal(18, 4)) as reported_revenue,
        _loaded_at,
        _file,
        _row_number
    from source
),

ranked as (
    select
        *,
        row_number() over (
            partition by campaign_id, member_id
            order by {{ latest_loaded_first() }}
        ) as load_rank
    from renamed
    where campaign_id is not null and member_id is not null
),

final as (
    select
        campaign_id,
        member_id,
        arm,
        is_treatment,
        variant_id,
        sent_at,
        assignment_probability,
        reported_converted,
        reported_revenue,
        _loaded_at as loaded_at
    from ranked
    where load_rank = 1
)

select * from final
