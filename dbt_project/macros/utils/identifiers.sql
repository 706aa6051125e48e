{#- Placeholder values systems send instead of "no value"; they would merge strangers in the identity graph. -#}
{% macro junk_identifiers() -%}
    ('', 'unknown', 'null', 'none', 'nil', 'n/a', 'na', 'nan', '0', '-', 'undefined', 'anonymous', 'guest')
{%- endmacro %}

{% macro clean_identifier(expr) -%}
    case
        when {{ expr }} is null then null
        when lower(trim({{ expr }})) in {{ junk_identifiers() }} then null
        when trim({{ expr }}) = '' then null
        -- All-zero IDs (000000) are default values from broken trackers.
        when trim(both '0' from trim({{ expr }})) = '' then null
        else trim({{ expr }})
    end
{%- endmacro %}

{% macro normalize_email(expr) -%}
    case
        when lower(trim({{ expr }})) in {{ junk_identifiers() }} then null
        when lower(trim({{ expr }})) like '%_@_%._%' then lower(trim({{ expr }}))
        else null
    end
{%- endmacro %}

{#-
    Digits only, in national form: a leading country code 82 becomes the trunk prefix 0
    (+82 10-1234-5678 and 010-1234-5678 are one phone). Fewer than 9 digits is not a mobile number.
-#}
{% macro normalize_phone(expr) -%}
    {%- set digits = regexp_replace_all(expr, "'[^0-9]'", "''") -%}
    case
        when length({{ digits }}) < 9 then null
        when trim(both '0' from {{ digits }}) = '' then null
        when {{ digits }} like '82%' and length({{ digits }}) >= 11 then '0' || substr({{ digits }}, 3)
        else {{ digits }}
    end
{%- endmacro %}

{#- A name as staging hashes it: case and surrounding spaces do not make another person. -#}
{% macro normalize_name(expr) -%}
    nullif(lower(trim({{ expr }})), '')
{%- endmacro %}

{#- Latest loaded row first: the order staging dedupes by (raw is append-only and keeps re-sends). -#}
{% macro latest_loaded_first() -%}
    _loaded_at desc, _file desc, _row_number desc
{%- endmacro %}

{#- Epoch seconds, zero-padded, so timestamps sort correctly as text inside composite labels. -#}
{% macro sortable_timestamp(expr) -%}
    lpad(cast({{ epoch_seconds(expr) }} as {{ type_text() }}), 12, '0')
{%- endmacro %}
