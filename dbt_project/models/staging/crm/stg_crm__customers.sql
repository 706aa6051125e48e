{#- Never a view: the HMAC UDF exists only in dbt's connection, and hashing once is cheaper. -#}
{{ config(unique_key='member_id') }}

with

source as (
    {{ incremental_raw(source('raw', 'customers'), ['member_id']) }}
),

renamed as (
    select
        {{ clean_identifier('member_id') }} as member_id,
        {{ pseudonymize_pii('email', normalize_email('email')) }} as email_hash,
        {{ pseudonymize_pii('phone', normalize_phone('phone')) }} as phone_hash,
        {{ pseudonymize_pii('full_name', normalize_name('full_name')) }} as full_name_hash,
        cast(birth_year as integer) as birth_year,
        coalesce(upper(trim(gender)), 'U') as gender,
        nullif(trim(city), '') as city,
        nullif(upper(trim(country)), '') as country,
        lower(trim(loyalty_tier)) as loyalty_tier,
        signup_at,
        updated_at,
        _loaded_at,
        _file,
        _row_number
    from source
),

ranked as (
    select
        *,
        -- A CRM row is a profile version: the newest change wins even when an older one arrives late.
        row_number() over (
            partition by member_id
            order by updated_at desc nulls last, {{ latest_loaded_first() }}
        ) as version_rank
    from renamed
    where member_id is not null
),

final as (
    select
        member_id,
        email_hash,
        phone_hash,
        full_name_hash,
        birth_year,
        gender,
        city,
        country,
        loyalty_tier,
        signup_at,
        updated_at,
        _loaded_at as loaded_at
    from ranked
    where version_rank = 1
)

select * from final
