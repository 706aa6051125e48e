{#- The cycle calendar (start_date + k * cycle_days), mirroring campaign_loop.config.Settings. -#}
{% macro cycle_start_date() -%}
    cast('{{ var("start_date") }}' as date)
{%- endmacro %}

{% macro cycle_days() -%}
    {{ var("cycle_days") | int }}
{%- endmacro %}

{#-
    The cycle starts from start_date up to `until` (a timestamp expression over the selected row), one row
    each: the engine's own series, so the calendar is as long as the data, with no row count to guess.
    Select it from a one-row relation; a NULL `until` (no data) gives no rows on both engines.
-#}
{% macro cycle_starts_until(until) -%}
    {{ return(adapter.dispatch('cycle_starts_until', 'campaign_loop')(until)) }}
{%- endmacro %}

{#- PostgreSQL: a set-returning function in the select list. -#}
{% macro default__cycle_starts_until(until) -%}
    generate_series(cast({{ cycle_start_date() }} as timestamp), {{ until }}, interval '{{ cycle_days() }} day')
{%- endmacro %}

{#- DuckDB: generate_series over timestamps returns a list in the select list. -#}
{% macro duckdb__cycle_starts_until(until) -%}
    unnest(generate_series(cast({{ cycle_start_date() }} as timestamp), {{ until }}, interval '{{ cycle_days() }} day'))
{%- endmacro %}

{#- Spark: sequence() raises when the stop is before the start (PostgreSQL and DuckDB give no rows). -#}
{% macro spark__cycle_starts_until(until) -%}
    explode(case when {{ until }} >= cast({{ cycle_start_date() }} as timestamp) then
        sequence(cast({{ cycle_start_date() }} as timestamp), {{ until }}, interval {{ cycle_days() }} day) end)
{%- endmacro %}
